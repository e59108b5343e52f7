#pragma once
// The training loop behind `rla train`: SGD with momentum, LR schedule, per-epoch evaluation,
// metrics.jsonl / config.json in the run folder, atomic checkpoints, resume, Ctrl-C and
// non-finite-loss handling.
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "rla/data/loader.h"
#include "rla/data/sources.h"
#include "rla/engine/metrics.h"
#include "rla/engine/schedule.h"
#include "rla/models/network.h"

namespace rla::engine {

struct TrainConfig {
  std::string model = "rla_resnet20";
  data::DataConfig data;
  int64_t rla_channels = 0;  ///< 0: the model's default k
  std::string aggregation;   ///< empty: the model's default (rla)
  int64_t epochs = 4;
  int64_t batch_size = 128;
  ScheduleConfig schedule;  ///< base_lr, kind, warm-up...
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 5e-4;
  double label_smoothing = 0.0;
  uint64_t seed = 0;
  int threads = 0;            ///< 0: all cores
  int workers = 1;            ///< loader threads
  bool channels_last = true;  ///< NHWC activations and weights (measured faster for every family)
  std::string out_dir;        ///< default runs/<model>-<dataset>
  bool resume = false;
  bool quiet = false;            ///< no progress bars
  int64_t max_steps = 0;         ///< stop (with a checkpoint, like Ctrl-C) after this many steps; tests only
  std::string init_checkpoint;   ///< start from these model weights (e.g. post-hoc exit heads)
  std::string exits;             ///< exit heads: "" (none), "block" or "stage"; recorded for `rla exits`
  double exit_weight = 0.5;      ///< joint training: loss = final + exit_weight * mean exit loss
  bool freeze_backbone = false;  ///< post-hoc exit heads: the model is frozen
};

nlohmann::json to_json(const TrainConfig& c);

struct EpochMetrics {
  int64_t epoch = 0;  ///< 1-based
  double lr = 0;
  double train_loss = 0, train_top1 = 0, train_top5 = 0;
  double val_loss = 0, val_top1 = 0, val_top5 = 0;
  double seconds = 0, train_img_per_s = 0;
};
nlohmann::json to_json(const EpochMetrics& m);

struct TrainResult {
  std::vector<EpochMetrics> history;  ///< every epoch of the run, resumed ones included
  double best_top1 = 0;
  std::string run_dir;
  bool stopped_early = false;  ///< Ctrl-C or max_steps: a resumable checkpoint was written
};

/// Thrown when the loss becomes NaN or infinite; the last good checkpoint is kept.
class NonFiniteLoss : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Extension points of the training loop: early-exit heads, distributed data parallelism.
struct TrainHooks {
  /// A module trained alongside the model (its parameters join the optimiser; checkpoints store
  /// it under "extra/"). Created by `make_extra` once the model exists.
  std::function<std::shared_ptr<torch::nn::Module>(models::NetworkImpl& net)> make_extra;
  /// Replaces the loss: returns {final logits [N, K], scalar loss}. Default: cross-entropy of
  /// net.forward(images) with the configured label smoothing.
  std::function<std::pair<torch::Tensor, torch::Tensor>(models::NetworkImpl& net, torch::nn::Module* extra,
                                                        const torch::Tensor& images,
                                                        const torch::Tensor& labels)>
      forward_loss;
  /// Train only the extra module: the model is frozen (eval mode, no gradients).
  bool freeze_model = false;
  /// Called once after the model (and extra) are built and loaded (e.g. broadcast rank 0's state).
  std::function<void(models::NetworkImpl& net, torch::nn::Module* extra)> on_ready;
  /// Called after backward, before the optimiser step (e.g. all-reduce the gradients).
  std::function<void(const std::vector<torch::Tensor>& params)> after_backward;
  /// Combines a meter across processes (e.g. all-reduce of its sums).
  std::function<void(ClassificationMeter& meter)> reduce_meter;
  int rank = 0, world_size = 1;  ///< data sharding; only rank 0 writes files and logs
};

/// Runs (or resumes) a training run. Throws on bad config, data errors, non-finite loss.
TrainResult train(const TrainConfig& config, const TrainHooks& hooks = {});

/// Asks a running train() to save a checkpoint and return at the next step (SIGINT handler).
void request_stop();
bool stop_requested();
void clear_stop_request();

/// Evaluates `net` on every batch of `loader` (eval mode, no grad).
ClassificationMeter evaluate(models::NetworkImpl& net, data::DataLoader& loader, int64_t num_classes,
                             bool show_progress = false);
/// The same with any forward (images [N, C, H, W] -> logits [N, classes]), e.g. the fast
/// inference path of inference/fast_inference.h. Runs under NoGradGuard.
ClassificationMeter evaluate(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                             data::DataLoader& loader, int64_t num_classes, bool show_progress = false);

/// Writes training_curves.png: loss and top-1 vs epoch, train and test, two panels.
void save_training_curves(const std::string& path, const std::vector<EpochMetrics>& history,
                          const std::string& title);

/// The file names inside a run folder.
std::string last_checkpoint_path(const std::string& run_dir);
std::string best_checkpoint_path(const std::string& run_dir);

}  // namespace rla::engine
