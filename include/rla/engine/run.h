#pragma once
// The run folder and everything in it that is not weights: the training configuration
// (config.json, both ways), the per-epoch metrics (metrics.jsonl) and the final result
// (result.json). Every reader of a run folder goes through this module.
//
//   <run>/config.json      TrainConfig, the model's resolved configuration included
//   <run>/metrics.jsonl    one EpochMetrics per line
//   <run>/result.json      RunResult: written once, when the run has finished all its epochs
//   <run>/test_predictions.txt  the final weights' top-1 class per test image (one per line, in
//                          dataset order), written with result.json by runs with a validation split
//   <run>/last.ckpt, best.ckpt, best_model.pt, training_curves.png
//   <run>/.lock            the writer's lock (engine/run_folder.h)
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "rla/data/sources.h"
#include "rla/engine/schedule.h"
#include "rla/models/registry.h"

namespace rla::engine {

struct TrainConfig {
  std::string model = "rla_resnet20";
  /// k, aggregation, init and state-input switches; unset fields take the model's defaults.
  /// train() stores the resolved configuration here (every field the model has set).
  models::ModelConfig model_config;
  data::DataConfig data;
  int64_t epochs = 4;
  /// Wall-clock budget of the whole run in minutes (0: none). After a short timed probe the
  /// schedule is shortened (never lengthened past `epochs`) so that training, the held-out
  /// evaluations and the final test end inside it; the last epoch may then be partial.
  double time_budget_minutes = 0;
  int64_t batch_size = 128;
  ScheduleConfig schedule;        ///< base_lr, kind, warm-up...
  std::string optimizer = "sgd";  ///< sgd | adamw | rmsprop (engine/optim.h)
  double momentum = 0.9;          ///< SGD and RMSprop
  bool nesterov = true;
  double weight_decay = 5e-4;
  double norm_weight_decay = -1.0;    ///< norm layers and biases; < 0: weight_decay
  double beta1 = 0.9, beta2 = 0.999;  ///< AdamW
  double rmsprop_alpha = 0.99;
  double opt_eps = 1e-8;   ///< AdamW and RMSprop
  double grad_clip = 0.0;  ///< clip the gradients' global L2 norm to this (after the all-reduce); 0: off
  double label_smoothing = 0.0;
  /// Exponential moving average of the weights, as torchvision's --model-ema: 0 = off; else the
  /// nominal decay, updated every ema_steps steps with torchvision's budget adjustment
  /// (trainer.h, ema_update_decay) and reset to the weights during warm-up.
  double ema_decay = 0.0;
  int64_t ema_steps = 32;
  /// Mixup / CutMix of each training batch (data/augment.h, BatchMixOptions): 0 alphas = off.
  double mixup_alpha = 0.0, cutmix_alpha = 0.0;
  double mix_prob = 1.0, mix_switch_prob = 0.5;
  std::string recipe;  ///< the --recipe preset the options started from ("" = none)
  uint64_t seed = 0;
  /// Where the model trains: "cpu", "cuda" or "cuda:N" (batches are moved there; data loading
  /// stays on the CPU).
  std::string device = "cpu";
  int threads = 0;            ///< 0: all cores
  int workers = 1;            ///< loader threads
  bool channels_last = true;  ///< NHWC activations and weights (measured faster for every family)
  std::string out_dir;        ///< default runs/<model>-<dataset>
  /// Continue the run in out_dir from its last.ckpt (a folder without one starts afresh).
  bool resume = false;
  /// Start afresh in an out_dir that holds a run: its files are deleted once this run holds the
  /// folder's lock and has been built. Without resume or overwrite such a folder is refused
  /// (engine/run_folder.h).
  bool overwrite = false;
  bool quiet = false;            ///< no progress bars
  int64_t max_steps = 0;         ///< stop (with a checkpoint, like Ctrl-C) after this many steps; tests only
  std::string init_checkpoint;   ///< start from these model weights (e.g. post-hoc exit heads)
  std::string exits;             ///< exit heads: "" (none), "block" or "stage"
  std::string exit_input;        ///< what exits read: "both" (default), "main" or "state"
  double exit_weight = 0.5;      ///< joint training: loss = final + exit_weight * mean exit loss
  int64_t exit_projection = 0;   ///< exit heads project their input to this many channels first (0: none)
  bool freeze_backbone = false;  ///< post-hoc exit heads: the model is frozen (eval mode)
  bool freeze_bn = false;        ///< BatchNorm keeps its running statistics (eval mode) while training
  /// Recorded by train(), not options: what the model's inputs were, so that a run can be used
  /// for inference without its dataset (the input [C, H, W], the normalisation, class names).
  std::vector<int64_t> input_shape;
  std::vector<double> input_mean, input_std;
  std::vector<std::string> class_names;
};

/// One line of metrics.jsonl. `val_*` is the held-out split evaluated after every epoch: the
/// validation split when the run has one (DataConfig::val_size), else the test set.
struct EpochMetrics {
  int64_t epoch = 0;  ///< 1-based
  double lr = 0;
  double train_loss = 0, train_top1 = 0, train_top5 = 0;
  double val_loss = 0, val_top1 = 0, val_top5 = 0;
  double seconds = 0, train_img_per_s = 0;
  /// The weight average (TrainConfig::ema_decay) on the same held-out split.
  std::optional<double> ema_val_loss, ema_val_top1, ema_val_top5;
};

/// result.json: the finished run's final weights on the validation split (when there is one)
/// and on the test set, which is evaluated here once and never used to choose anything.
struct RunResult {
  int64_t epochs = 0;
  std::optional<double> fitted_epochs;  ///< the schedule's length when a time budget shortened it
  std::optional<double> val_loss, val_top1, val_top5;
  double test_loss = 0, test_top1 = 0, test_top5 = 0;
  /// The final weight average, when the run kept one.
  std::optional<double> ema_val_loss, ema_val_top1, ema_val_top5;
  std::optional<double> ema_test_loss, ema_test_top1, ema_test_top5;
};

nlohmann::json to_json(const models::ModelConfig& c);  ///< only the fields that are set
models::ModelConfig model_config_from_json(const nlohmann::json& j);
nlohmann::json to_json(const TrainConfig& c);
/// Throws std::invalid_argument naming the key on a value of the wrong type.
TrainConfig train_config_from_json(const nlohmann::json& j);
nlohmann::json to_json(const EpochMetrics& m);
EpochMetrics epoch_metrics_from_json(const nlohmann::json& j);
nlohmann::json to_json(const RunResult& r);
RunResult run_result_from_json(const nlohmann::json& j);

/// File names inside a run folder.
std::string config_path(const std::string& run_dir);
std::string metrics_path(const std::string& run_dir);
std::string result_path(const std::string& run_dir);
std::string last_checkpoint_path(const std::string& run_dir);
std::string best_checkpoint_path(const std::string& run_dir);
std::string test_predictions_path(const std::string& run_dir);

/// config.json of a run folder. Throws std::runtime_error naming the file when it is missing
/// or not a configuration.
TrainConfig read_train_config(const std::string& run_dir);
/// metrics.jsonl of a run folder, in file order; unreadable lines are skipped; empty when the
/// file is missing.
std::vector<EpochMetrics> read_metrics(const std::string& run_dir);
/// result.json of a run folder, if the run has finished.
std::optional<RunResult> read_result(const std::string& run_dir);

/// The model a run trained, built from its configuration (weights not loaded). The config must
/// carry num_classes and in_channels (train() stores them; inference::load_model fills them in
/// for configs written before they were stored).
models::Network build_model(const TrainConfig& config);

/// A run folder resolves to its last.ckpt (the end of the recipe); a file is used as is.
/// Throws std::runtime_error when neither exists.
std::string resolve_checkpoint(const std::string& run_or_checkpoint);
/// The training configuration a checkpoint carries. Throws std::runtime_error naming the file.
TrainConfig checkpoint_config(const std::string& checkpoint);

}  // namespace rla::engine
