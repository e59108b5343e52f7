// `rla train`: trains a model from the zoo on a dataset (default: rla_resnet20 on the
// Fashion-MNIST of Debian's dataset-fashion-mnist), writing a resumable run folder.
#include <fmt/format.h>

#include "commands.h"
#include "flags.h"
#include "options.h"
#include "rla/data/sources.h"
#include "rla/distributed/data_parallel.h"
#include "rla/engine/recipes.h"
#include "rla/engine/run_folder.h"
#include "rla/engine/trainer.h"
#include "rla/util/parse.h"

namespace rla::app {
namespace {

// What the command line types as text and the configuration holds as a type.
struct TextFlags {
  std::string schedule = engine::to_string(engine::ScheduleConfig{}.kind);
  std::string optimizer = engine::to_string(engine::OptimizerConfig{}.kind);
  std::string auto_augment = data::to_string(data::DataConfig{}.auto_augment);
  std::string exits, exit_input, milestones, betas, recipe;
  bool no_augment = false, show_recipe = false;

  // Moves the values into `c` (before a preset fills in what the user left unset).
  void apply(engine::TrainConfig& c) const {
    c.schedule.kind = engine::parse_schedule_kind(schedule);
    c.optimizer.kind = engine::parse_optimizer_kind(optimizer);
    c.data.auto_augment = data::parse_auto_augment(auto_augment);
    c.data.augment = !no_augment;
    if (!exits.empty()) c.exits.placement = models::parse_exit_placement(exits);
    if (!exit_input.empty()) c.exits.input = models::parse_exit_input(exit_input);
    if (!betas.empty()) {
      const auto b = util::parse_double_list(betas, 2, "--betas");
      c.optimizer.betas = {b[0], b[1]};
    }
    if (!milestones.empty()) {
      const auto n = static_cast<size_t>(std::count(milestones.begin(), milestones.end(), ',') + 1);
      c.schedule.milestones = util::parse_int_list(milestones, n, "--milestones");
    }
  }
};

// A preset as the options it sets, typed as on the command line: "--recipe modern: ...\n  --lr 0.5 ...".
std::string describe(const engine::Recipe& r) {
  std::vector<std::string> fields;
  for (const auto& [field, value] : r.values) fields.push_back(field);
  std::string out = fmt::format("--recipe {}: {}\n ", r.name, with_flags(r.summary, fields));
  for (const auto& [field, value] : r.values) {
    if (value == "true" || value == "false") {  // flags print as typed: --nesterov / --no-nesterov
      const auto off = negative_flag_for_field(field);
      out += " " + (value == "true" ? flag_for_field(field)
                    : off.empty()   ? "--no-" + flag_for_field(field).substr(2)
                                    : off);
    } else {
      out += fmt::format(" {} {}", flag_for_field(field), value);
    }
  }
  return out + "\n";
}

}  // namespace

Command add_train_command(CLI::App& root) {
  auto cfg = std::make_shared<engine::TrainConfig>();
  auto text = std::make_shared<TextFlags>();
  auto model_flags = std::make_shared<ModelFlags>();
  auto& run = cfg->run;
  auto& opt = cfg->optimizer;
  auto& reg = cfg->regularization;
  auto* cmd =
      root.add_subcommand("train", "Train a model; writes metrics.jsonl, config.json and checkpoints");
  cmd->add_option("--model,-m", cfg->model, "Model name (see `rla list`)")->capture_default_str();
  add_model_options(cmd, *model_flags);
  add_data_options(cmd, cfg->data);
  cmd->add_option("--val-size", cfg->data.val_size,
                  "Hold out a class-stratified validation split of N training images: evaluated every "
                  "epoch and used to pick best.ckpt; the test set is then evaluated once, at the end "
                  "(0 = no split: the test set is evaluated every epoch)")
      ->capture_default_str();
  cmd->add_option("--val-seed", cfg->data.val_seed, "Seed of the validation split (not the run's --seed)")
      ->capture_default_str();
  cmd->add_option("--epochs", run.epochs, "Epochs")->capture_default_str();
  cmd->add_option("--time-budget", run.time_budget_minutes,
                  "Finish the whole run within this many minutes: after 25 timed steps the schedule is "
                  "shortened (never past --epochs) to fit, the last epoch possibly partial (0: off)")
      ->capture_default_str();
  cmd->add_option("--batch-size,-b", run.batch_size, "Batch size")->capture_default_str();
  cmd->add_option("--lr", cfg->schedule.base_lr, "Base learning rate")->capture_default_str();
  cmd->add_option("--schedule", text->schedule, "constant | step | multistep | cosine")
      ->capture_default_str();
  cmd->add_option("--milestones", text->milestones, "multistep: epochs, comma-separated (e.g. 30,60,90)");
  cmd->add_option("--step-size", cfg->schedule.step_size, "step: decay every N epochs")
      ->capture_default_str();
  cmd->add_option("--gamma", cfg->schedule.gamma, "step/multistep decay factor")->capture_default_str();
  cmd->add_option("--warmup-epochs", cfg->schedule.warmup_epochs,
                  "Linear warm-up length (epochs, fractional ok)")
      ->capture_default_str();
  cmd->add_option("--optimizer", text->optimizer, "sgd | adamw | rmsprop")
      ->check(CLI::IsMember(engine::optimizer_names()))
      ->capture_default_str();
  cmd->add_option("--momentum", opt.momentum, "Momentum (SGD, RMSprop)")->capture_default_str();
  cmd->add_flag("--nesterov,!--no-nesterov", opt.nesterov, "Nesterov momentum (SGD)")->capture_default_str();
  cmd->add_option("--wd,--weight-decay", opt.weight_decay, "Weight decay")->capture_default_str();
  cmd->add_option(
      "--norm-weight-decay", opt.norm_weight_decay,
      "Weight decay of norm-layer parameters and biases (default: --wd; 0 as torchvision's recipe)");
  cmd->add_option("--betas", text->betas, "AdamW betas B1,B2 (default 0.9,0.999)");
  cmd->add_option("--rmsprop-alpha", opt.rmsprop_alpha, "RMSprop smoothing constant")->capture_default_str();
  cmd->add_option("--opt-eps", opt.eps, "AdamW / RMSprop epsilon")->capture_default_str();
  cmd->add_option("--clip-grad-norm", opt.grad_clip,
                  "Clip the gradients' global L2 norm (after the data-parallel all-reduce); 0 = off")
      ->capture_default_str();
  cmd->add_option("--label-smoothing", reg.label_smoothing, "Label smoothing")->capture_default_str();
  cmd->add_option("--ema-decay", reg.ema_decay,
                  "Keep an exponential moving average of the weights (torchvision's --model-ema-decay, "
                  "adjusted for the budget; 0 = off); evaluated and checkpointed beside the raw weights")
      ->capture_default_str();
  cmd->add_option("--ema-steps", reg.ema_steps, "Update the weight average every N steps")
      ->capture_default_str();
  cmd->add_option("--mixup", reg.mixup_alpha, "Mixup alpha (0 = off)")->capture_default_str();
  cmd->add_option("--cutmix", reg.cutmix_alpha, "CutMix alpha (0 = off)")->capture_default_str();
  cmd->add_option("--mix-prob", reg.mix_prob, "Probability that a batch is mixed")->capture_default_str();
  cmd->add_option("--mix-switch-prob", reg.mix_switch_prob, "With both alphas: probability of CutMix")
      ->capture_default_str();
  cmd->add_option("--auto-augment", text->auto_augment,
                  "After crop + flip: none | trivialaugment (TrivialAugmentWide) | randaugment")
      ->check(CLI::IsMember(data::auto_augment_names()))
      ->capture_default_str();
  cmd->add_option("--randaugment-n", cfg->data.randaugment_ops, "RandAugment: operations per image (N)")
      ->capture_default_str();
  cmd->add_option("--randaugment-m", cfg->data.randaugment_magnitude,
                  "RandAugment: magnitude bin M in [0, 30]")
      ->capture_default_str();
  cmd->add_option("--random-erasing", cfg->data.random_erasing, "RandomErasing probability (0 = off)")
      ->capture_default_str();
  cmd->add_flag("--no-augment", text->no_augment, "Disable training augmentation");
  std::string recipe_help = "Start from a preset; options given on the command line win:\n";
  std::vector<std::string> recipe_names;
  for (const auto& r : engine::train_recipes()) {
    recipe_help += describe(r);
    recipe_names.push_back(r.name);
  }
  cmd->add_option("--recipe", text->recipe, recipe_help)->check(CLI::IsMember(recipe_names));
  cmd->add_flag("--show-recipe", text->show_recipe,
                "Print the options --recipe sets (all presets without --recipe) and exit");
  cmd->add_option("--seed", run.seed, "Random seed (data order, augmentation, init)")->capture_default_str();
  cmd->add_option("--workers", run.workers, "Data-loading threads")->capture_default_str();
  cmd->add_option("--device", run.device, "cpu, cuda or cuda:N (data loading stays on the CPU)")
      ->capture_default_str();
  cmd->add_flag("--channels-last,!--nchw", run.channels_last,
                "Memory format: channels-last (NHWC, the default: faster here) or NCHW");
  cmd->add_option("--out,-o", run.out_dir, "Run folder (default runs/<model>-<dataset>)");
  cmd->add_flag("--resume", run.resume,
                "Continue the run in --out from its last.ckpt (in a folder without one, a new run starts)");
  cmd->add_flag("--overwrite", run.overwrite,
                "Start over in --out even if it holds a run: the old run's files are deleted once this run "
                "holds the folder's lock")
      ->excludes("--resume");
  cmd->add_flag("--quiet,-q", run.quiet, "No progress output");
  cmd->add_option("--max-steps", run.max_steps, "Stop after N optimiser steps with a resumable checkpoint")
      ->check(kNonNegative);
  cmd->add_option("--exits", text->exits, "Train early-exit heads after every block or stage")
      ->check(CLI::IsMember({"block", "stage"}));
  cmd->add_option("--exit-input", text->exit_input,
                  "What exits read: both (cat(x, h), default), main (x alone) or state (h alone, RLA nets)")
      ->check(CLI::IsMember({"both", "main", "state"}));
  cmd->add_option("--exit-weight", cfg->exits.weight, "Joint exits: loss = final + weight * mean exit loss")
      ->capture_default_str();
  cmd->add_option("--exit-projection", cfg->exits.projection,
                  "Exit heads first project their input to N channels (1x1 conv + BN + ReLU), so that heads "
                  "reading h, x or both have the same capacity (0: a linear head on the pooled input)")
      ->check(kNonNegative);
  cmd->add_flag("--freeze-backbone", cfg->exits.freeze_backbone,
                "Post-hoc exits: train only the heads (needs --init-from)");
  cmd->add_option("--init-from", run.init_checkpoint, "Start from this checkpoint's model weights");
  cmd->add_flag("--freeze-bn", run.freeze_bn,
                "BatchNorm keeps its running statistics while training (fine-tuning)");
  auto dist = std::make_shared<std::pair<double, distributed::DataParallelOptions>>();
  cmd->add_option(
         "--dist-timeout", dist->first,
         "Data parallel (WORLD_SIZE>1, see `rla launch`): seconds until a lost rank is an error (300)")
      ->check(kPositive);
  cmd->add_option("--bucket-mb", dist->second.bucket_mb, "Data parallel: gradient bucket size (MB)")
      ->check(kNonNegative)
      ->capture_default_str();
  cmd->add_flag("!--no-overlap", dist->second.overlap,
                "Data parallel: all-reduce after backward, not during it");
  return {cmd, [cmd, cfg, text, dist, model_flags]() {
            if (text->show_recipe) {
              for (const auto& r : engine::train_recipes())
                if (text->recipe.empty() || text->recipe == r.name) fmt::print("{}", describe(r));
              return 0;
            }
            text->apply(*cfg);
            if (!text->recipe.empty()) {  // the preset fills what the command line left unset
              engine::apply_recipe(engine::find_recipe(text->recipe), *cfg, [cmd](const std::string& field) {
                const auto* option = cmd->get_option_no_throw(flag_for_field(field));
                return option && option->count() > 0;
              });
            }
            cfg->run.threads = torch::get_num_threads();  // set from --threads by main
            cfg->model_config = model_flags->to_config();
            // SIGINT, SIGTERM and SIGHUP stop after the current step with a resumable last.ckpt.
            engine::install_stop_signals();
            engine::TrainHooks hooks;
            auto data_parallel = distributed::start_data_parallel_from_env(dist->first, dist->second, hooks);
            engine::TrainResult result;
            try {
              result = engine::train(*cfg, hooks);
            } catch (const engine::ExistingRun& e) {
              throw std::runtime_error(
                  e.resumable()
                      ? fmt::format("{} already holds a run ({}): continue it with --resume or start over "
                                    "with --overwrite",
                                    e.run_dir(), fmt::join(e.files(), ", "))
                      : fmt::format("{} holds a finished run ({}) and no last.ckpt to continue from: start "
                                    "over with --overwrite",
                                    e.run_dir(), fmt::join(e.files(), ", ")));
            }
            if (data_parallel) fmt::print(stderr, "{}\n", data_parallel->finish());
            engine::restore_stop_signals();
            // Stopped with a checkpoint: 128 + the signal that asked (130 for --max-steps or a
            // stop shared by another rank), as a process killed by it would report.
            const int stopped = engine::stop_signal() > 0 ? 128 + engine::stop_signal() : 130;
            if (hooks.rank != 0) return result.stopped_early ? stopped : 0;
            if (result.stopped_early) {
              fmt::print(
                  "{}: stopped after {} epochs with a checkpoint; run folder {} (continue with --resume)\n",
                  cfg->model, result.history.empty() ? 0 : result.history.back().epoch, result.run_dir);
              return stopped;
            }
            if (result.history.empty()) return 0;
            // A schedule fitted to --time-budget may end inside an epoch: say how far it went.
            const std::string epochs_done =
                result.final && result.final->fitted_epochs
                    ? fmt::format("{:.2f} epochs (fitted to the time budget)", *result.final->fitted_epochs)
                    : fmt::format("{} epochs", result.final ? result.final->epochs : 0);
            if (!result.final) {
              fmt::print("{}: stopped after {} epochs; run folder {}\n", cfg->model,
                         result.history.back().epoch, result.run_dir);
            } else if (result.final->val_top1) {
              fmt::print(
                  "{}: validation top-1 {:.2f}%, test top-1 {:.2f}% top-5 {:.2f}% after {}; run "
                  "folder {}\n",
                  cfg->model, *result.final->val_top1, result.final->test_top1, result.final->test_top5,
                  epochs_done, result.run_dir);
            } else {
              fmt::print("{}: test top-1 {:.2f}% (best {:.2f}%), top-5 {:.2f}% after {}; run folder {}\n",
                         cfg->model, result.final->test_top1, result.best_top1, result.final->test_top5,
                         epochs_done, result.run_dir);
            }
            return 0;
          }};
}

}  // namespace rla::app
