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
  int threads = 0;  ///< 0: all cores
  int workers = 1;  ///< loader threads
  bool channels_last = false;
  std::string out_dir;  ///< default runs/<model>-<dataset>
  bool resume = false;
  bool quiet = false;     ///< no progress bars
  int64_t max_steps = 0;  ///< stop (with a checkpoint, like Ctrl-C) after this many steps; tests only
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

/// Runs (or resumes) a training run. Throws on bad config, data errors, non-finite loss.
TrainResult train(const TrainConfig& config);

/// Asks a running train() to save a checkpoint and return at the next step (SIGINT handler).
void request_stop();
bool stop_requested();
void clear_stop_request();

/// Evaluates `net` on every batch of `loader` (eval mode, no grad).
ClassificationMeter evaluate(models::NetworkImpl& net, data::DataLoader& loader, int64_t num_classes,
                             bool show_progress = false);

/// The file names inside a run folder.
std::string last_checkpoint_path(const std::string& run_dir);
std::string best_checkpoint_path(const std::string& run_dir);

}  // namespace rla::engine
