// `rla train`: trains a model from the zoo on a dataset (default: rla_resnet20 on the
// Fashion-MNIST of Debian's dataset-fashion-mnist), writing a resumable run folder.
#include <fmt/format.h>

#include "commands.h"
#include "options.h"
#include "rla/data/sources.h"
#include "rla/distributed/data_parallel.h"
#include "rla/engine/run_folder.h"
#include "rla/engine/trainer.h"
#include "rla/util/parse.h"

namespace rla::app {
namespace {

// A --recipe preset: option values applied where the command line leaves the option unset.
struct Recipe {
  const char* name;
  const char* summary;
  std::vector<std::pair<const char*, const char*>> options;
};

const std::vector<Recipe>& recipes() {
  static const std::vector<Recipe> all = {
      {"paper",
       "the official RLA-Net ImageNet recipe (docs/models.md)",
       {{"--optimizer", "sgd"},
        {"--lr", "0.1"},
        {"--momentum", "0.9"},
        {"--nesterov", "false"},
        {"--wd", "1e-4"},
        {"--norm-weight-decay", "1e-4"},
        {"--schedule", "step"},
        {"--step-size", "30"},
        {"--gamma", "0.1"},
        {"--warmup-epochs", "0"},
        {"--epochs", "120"},
        {"--batch-size", "256"},
        {"--label-smoothing", "0"},
        {"--auto-augment", "none"},
        {"--random-erasing", "0"},
        {"--mixup", "0"},
        {"--cutmix", "0"},
        {"--ema-decay", "0"},
        {"--clip-grad-norm", "0"}}},
      {"modern",
       "torchvision's ResNet-50 recipe of 2021 (docs/training.md; its batch is 8 x 128, scale --lr with "
       "--batch-size)",
       {{"--optimizer", "sgd"},
        {"--lr", "0.5"},
        {"--momentum", "0.9"},
        {"--nesterov", "false"},
        {"--wd", "2e-5"},
        {"--norm-weight-decay", "0"},
        {"--schedule", "cosine"},
        {"--warmup-epochs", "5"},
        {"--epochs", "600"},
        {"--batch-size", "1024"},
        {"--label-smoothing", "0.1"},
        {"--auto-augment", "trivialaugment"},
        {"--random-erasing", "0.1"},
        {"--mixup", "0.2"},
        {"--cutmix", "1.0"},
        {"--ema-decay", "0.99998"},
        {"--ema-steps", "32"},
        {"--clip-grad-norm", "0"}}},
  };
  return all;
}

const Recipe& find_recipe(const std::string& name) {
  for (const auto& r : recipes())
    if (name == r.name) return r;
  throw std::invalid_argument(fmt::format("--recipe: unknown '{}' (expected paper or modern)", name));
}

std::string describe(const Recipe& r) {
  std::string out = fmt::format("--recipe {}: {}\n ", r.name, r.summary);
  for (const auto& [flag, value] : r.options) {
    const std::string v = value;  // flags print as typed: --nesterov / --no-nesterov
    if (v == "true" || v == "false") {
      out += v == "true" ? fmt::format(" {}", flag) : fmt::format(" --no-{}", flag + 2);
    } else {
      out += fmt::format(" {} {}", flag, value);
    }
  }
  return out + "\n";
}

// Applies the recipe's values to the options the command line did not set.
void apply_recipe(CLI::App* cmd, const Recipe& r) {
  for (const auto& [flag, value] : r.options) {
    auto* option = cmd->get_option(flag);
    if (option->count() > 0) continue;
    option->add_result(value);
    option->run_callback();
  }
}

}  // namespace

Command add_train_command(CLI::App& root) {
  auto cfg = std::make_shared<engine::TrainConfig>();
  auto milestones = std::make_shared<std::string>();
  auto no_augment = std::make_shared<bool>(false);
  auto model_flags = std::make_shared<ModelFlags>();
  auto recipe = std::make_shared<std::string>();
  auto show_recipe = std::make_shared<bool>(false);
  auto betas = std::make_shared<std::string>();
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
  cmd->add_option("--epochs", cfg->epochs, "Epochs")->capture_default_str();
  cmd->add_option("--time-budget", cfg->time_budget_minutes,
                  "Finish the whole run within this many minutes: after 25 timed steps the schedule is "
                  "shortened (never past --epochs) to fit, the last epoch possibly partial (0: off)")
      ->capture_default_str();
  cmd->add_option("--batch-size,-b", cfg->batch_size, "Batch size")->capture_default_str();
  cmd->add_option("--lr", cfg->schedule.base_lr, "Base learning rate")->capture_default_str();
  cmd->add_option("--schedule", cfg->schedule.kind, "constant | step | multistep | cosine")
      ->capture_default_str();
  cmd->add_option("--milestones", *milestones, "multistep: epochs, comma-separated (e.g. 30,60,90)");
  cmd->add_option("--step-size", cfg->schedule.step_size, "step: decay every N epochs")
      ->capture_default_str();
  cmd->add_option("--gamma", cfg->schedule.gamma, "step/multistep decay factor")->capture_default_str();
  cmd->add_option("--warmup-epochs", cfg->schedule.warmup_epochs,
                  "Linear warm-up length (epochs, fractional ok)")
      ->capture_default_str();
  cmd->add_option("--optimizer", cfg->optimizer, "sgd | adamw | rmsprop")
      ->check(CLI::IsMember({"sgd", "adamw", "rmsprop"}))
      ->capture_default_str();
  cmd->add_option("--momentum", cfg->momentum, "Momentum (SGD, RMSprop)")->capture_default_str();
  cmd->add_flag("--nesterov,!--no-nesterov", cfg->nesterov, "Nesterov momentum (SGD)")->capture_default_str();
  cmd->add_option("--wd,--weight-decay", cfg->weight_decay, "Weight decay")->capture_default_str();
  cmd->add_option(
      "--norm-weight-decay", cfg->norm_weight_decay,
      "Weight decay of norm-layer parameters and biases (default: --wd; 0 as torchvision's recipe)");
  cmd->add_option("--betas", *betas, "AdamW betas B1,B2 (default 0.9,0.999)");
  cmd->add_option("--rmsprop-alpha", cfg->rmsprop_alpha, "RMSprop smoothing constant")->capture_default_str();
  cmd->add_option("--opt-eps", cfg->opt_eps, "AdamW / RMSprop epsilon")->capture_default_str();
  cmd->add_option("--clip-grad-norm", cfg->grad_clip,
                  "Clip the gradients' global L2 norm (after the data-parallel all-reduce); 0 = off")
      ->capture_default_str();
  cmd->add_option("--label-smoothing", cfg->label_smoothing, "Label smoothing")->capture_default_str();
  cmd->add_option("--ema-decay", cfg->ema_decay,
                  "Keep an exponential moving average of the weights (torchvision's --model-ema-decay, "
                  "adjusted for the budget; 0 = off); evaluated and checkpointed beside the raw weights")
      ->capture_default_str();
  cmd->add_option("--ema-steps", cfg->ema_steps, "Update the weight average every N steps")
      ->capture_default_str();
  cmd->add_option("--mixup", cfg->mixup_alpha, "Mixup alpha (0 = off)")->capture_default_str();
  cmd->add_option("--cutmix", cfg->cutmix_alpha, "CutMix alpha (0 = off)")->capture_default_str();
  cmd->add_option("--mix-prob", cfg->mix_prob, "Probability that a batch is mixed")->capture_default_str();
  cmd->add_option("--mix-switch-prob", cfg->mix_switch_prob, "With both alphas: probability of CutMix")
      ->capture_default_str();
  cmd->add_option("--auto-augment", cfg->data.auto_augment,
                  "After crop + flip: none | trivialaugment (TrivialAugmentWide) | randaugment")
      ->check(CLI::IsMember({"none", "trivialaugment", "randaugment"}))
      ->capture_default_str();
  cmd->add_option("--randaugment-n", cfg->data.randaugment_ops, "RandAugment: operations per image (N)")
      ->capture_default_str();
  cmd->add_option("--randaugment-m", cfg->data.randaugment_magnitude,
                  "RandAugment: magnitude bin M in [0, 30]")
      ->capture_default_str();
  cmd->add_option("--random-erasing", cfg->data.random_erasing, "RandomErasing probability (0 = off)")
      ->capture_default_str();
  cmd->add_flag("--no-augment", *no_augment, "Disable training augmentation");
  std::string recipe_help = "Start from a preset; options given on the command line win:\n";
  for (const auto& r : recipes()) recipe_help += describe(r);
  cmd->add_option("--recipe", *recipe, recipe_help)->check(CLI::IsMember({"paper", "modern"}));
  cmd->add_flag("--show-recipe", *show_recipe,
                "Print the options --recipe sets (all presets without --recipe) and exit");
  cmd->add_option("--seed", cfg->seed, "Random seed (data order, augmentation, init)")->capture_default_str();
  cmd->add_option("--workers", cfg->workers, "Data-loading threads")->capture_default_str();
  cmd->add_option("--device", cfg->device, "cpu, cuda or cuda:N (data loading stays on the CPU)")
      ->capture_default_str();
  cmd->add_flag("--channels-last,!--nchw", cfg->channels_last,
                "Memory format: channels-last (NHWC, the default: faster here) or NCHW");
  cmd->add_option("--out,-o", cfg->out_dir, "Run folder (default runs/<model>-<dataset>)");
  cmd->add_flag("--resume", cfg->resume,
                "Continue the run in --out from its last.ckpt (in a folder without one, a new run starts)");
  cmd->add_flag("--overwrite", cfg->overwrite,
                "Start over in --out even if it holds a run: the old run's files are deleted once this run "
                "holds the folder's lock")
      ->excludes("--resume");
  cmd->add_flag("--quiet,-q", cfg->quiet, "No progress output");
  cmd->add_option("--max-steps", cfg->max_steps, "Stop after N optimiser steps with a resumable checkpoint");
  cmd->add_option("--exits", cfg->exits, "Train early-exit heads after every block or stage")
      ->check(CLI::IsMember({"block", "stage"}));
  cmd->add_option("--exit-input", cfg->exit_input,
                  "What exits read: both (cat(x, h), default), main (x alone) or state (h alone, RLA nets)")
      ->check(CLI::IsMember({"both", "main", "state"}));
  cmd->add_option("--exit-weight", cfg->exit_weight, "Joint exits: loss = final + weight * mean exit loss")
      ->capture_default_str();
  cmd->add_option("--exit-projection", cfg->exit_projection,
                  "Exit heads first project their input to N channels (1x1 conv + BN + ReLU), so that heads "
                  "reading h, x or both have the same capacity (0: a linear head on the pooled input)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--freeze-backbone", cfg->freeze_backbone,
                "Post-hoc exits: train only the heads (needs --init-from)");
  cmd->add_option("--init-from", cfg->init_checkpoint, "Start from this checkpoint's model weights");
  cmd->add_flag("--freeze-bn", cfg->freeze_bn,
                "BatchNorm keeps its running statistics while training (fine-tuning)");
  auto dist = std::make_shared<std::pair<double, distributed::DataParallelOptions>>();
  cmd->add_option(
      "--dist-timeout", dist->first,
      "Data parallel (WORLD_SIZE>1, see `rla launch`): seconds until a lost rank is an error (300)");
  cmd->add_option("--bucket-mb", dist->second.bucket_mb, "Data parallel: gradient bucket size (MB)")
      ->capture_default_str();
  cmd->add_flag("!--no-overlap", dist->second.overlap,
                "Data parallel: all-reduce after backward, not during it");
  return {cmd, [cmd, cfg, milestones, no_augment, dist, model_flags, recipe, show_recipe, betas]() {
            if (*show_recipe) {
              for (const auto& r : recipes())
                if (recipe->empty() || *recipe == r.name) fmt::print("{}", describe(r));
              return 0;
            }
            if (!recipe->empty()) {
              apply_recipe(cmd, find_recipe(*recipe));
              cfg->recipe = *recipe;
            }
            if (!betas->empty()) {
              const auto b = util::parse_double_list(*betas, 2, "--betas");
              cfg->beta1 = b[0], cfg->beta2 = b[1];
            }
            cfg->threads = torch::get_num_threads();  // set from --threads by main
            cfg->model_config = model_flags->to_config();
            cfg->data.augment = !*no_augment;
            if (!milestones->empty()) {
              const auto n = static_cast<size_t>(std::count(milestones->begin(), milestones->end(), ',') + 1);
              cfg->schedule.milestones = util::parse_int_list(*milestones, n, "--milestones");
            }
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
            if (result.history.empty() || hooks.rank != 0) return result.stopped_early ? stopped : 0;
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
            return result.stopped_early ? stopped : 0;
          }};
}

}  // namespace rla::app
