// `rla train`: trains a model from the zoo on a dataset (default: rla_resnet20 on the
// Fashion-MNIST of Debian's dataset-fashion-mnist), writing a resumable run folder.
#include <csignal>

#include <fmt/format.h>

#include "commands.h"
#include "options.h"
#include "rla/data/sources.h"
#include "rla/distributed/data_parallel.h"
#include "rla/engine/trainer.h"
#include "rla/util/parse.h"

namespace rla::app {
namespace {

extern "C" void on_sigint(int) {
  if (engine::stop_requested()) std::_Exit(130);  // second Ctrl-C: leave at once
  engine::request_stop();
}

}  // namespace

Command add_train_command(CLI::App& root) {
  auto cfg = std::make_shared<engine::TrainConfig>();
  auto milestones = std::make_shared<std::string>();
  auto no_augment = std::make_shared<bool>(false);
  auto model_flags = std::make_shared<ModelFlags>();
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
  cmd->add_option("--momentum", cfg->momentum, "SGD momentum")->capture_default_str();
  cmd->add_flag("--nesterov,!--no-nesterov", cfg->nesterov, "Nesterov momentum")->capture_default_str();
  cmd->add_option("--wd,--weight-decay", cfg->weight_decay, "Weight decay")->capture_default_str();
  cmd->add_option("--label-smoothing", cfg->label_smoothing, "Label smoothing")->capture_default_str();
  cmd->add_flag("--no-augment", *no_augment, "Disable training augmentation");
  cmd->add_option("--seed", cfg->seed, "Random seed (data order, augmentation, init)")->capture_default_str();
  cmd->add_option("--workers", cfg->workers, "Data-loading threads")->capture_default_str();
  cmd->add_flag("--channels-last,!--nchw", cfg->channels_last,
                "Memory format: channels-last (NHWC, the default: faster here) or NCHW");
  cmd->add_option("--out,-o", cfg->out_dir, "Run folder (default runs/<model>-<dataset>)");
  cmd->add_flag("--resume", cfg->resume, "Continue the run in --out from its last checkpoint");
  cmd->add_flag("--quiet,-q", cfg->quiet, "No progress output");
  cmd->add_option("--max-steps", cfg->max_steps, "Stop after N optimiser steps with a resumable checkpoint");
  cmd->add_option("--exits", cfg->exits, "Train early-exit heads after every block or stage")
      ->check(CLI::IsMember({"block", "stage"}));
  cmd->add_option("--exit-input", cfg->exit_input,
                  "What exits read: both (cat(x, h), default), main (x alone) or state (h alone, RLA nets)")
      ->check(CLI::IsMember({"both", "main", "state"}));
  cmd->add_option("--exit-weight", cfg->exit_weight, "Joint exits: loss = final + weight * mean exit loss")
      ->capture_default_str();
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
  return {cmd, [cfg, milestones, no_augment, dist, model_flags]() {
            cfg->threads = torch::get_num_threads();  // set from --threads by main
            cfg->model_config = model_flags->to_config();
            cfg->data.augment = !*no_augment;
            if (!milestones->empty()) {
              const auto n = static_cast<size_t>(std::count(milestones->begin(), milestones->end(), ',') + 1);
              cfg->schedule.milestones = util::parse_int_list(*milestones, n, "--milestones");
            }
            std::signal(SIGINT, on_sigint);
            engine::TrainHooks hooks;
            auto data_parallel = distributed::start_data_parallel_from_env(dist->first, dist->second, hooks);
            auto result = engine::train(*cfg, hooks);
            if (data_parallel) fmt::print(stderr, "{}\n", data_parallel->finish());
            std::signal(SIGINT, SIG_DFL);
            if (result.history.empty() || hooks.rank != 0) return result.stopped_early ? 130 : 0;
            if (!result.final) {
              fmt::print("{}: stopped after {} epochs; run folder {}\n", cfg->model,
                         result.history.back().epoch, result.run_dir);
            } else if (result.final->val_top1) {
              fmt::print(
                  "{}: validation top-1 {:.2f}%, test top-1 {:.2f}% top-5 {:.2f}% after {} epochs; run "
                  "folder {}\n",
                  cfg->model, *result.final->val_top1, result.final->test_top1, result.final->test_top5,
                  result.final->epochs, result.run_dir);
            } else {
              fmt::print(
                  "{}: test top-1 {:.2f}% (best {:.2f}%), top-5 {:.2f}% after {} epochs; run folder {}\n",
                  cfg->model, result.final->test_top1, result.best_top1, result.final->test_top5,
                  result.final->epochs, result.run_dir);
            }
            return result.stopped_early ? 130 : 0;
          }};
}

}  // namespace rla::app
