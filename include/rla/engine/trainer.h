#pragma once
// The training loop: SGD with momentum, LR schedule, per-epoch evaluation on
// a validation split (or the test set), a once-only final test evaluation, early-exit heads
// (joint or post hoc), the run folder (engine/run.h, locked: engine/run_folder.h), atomic
// checkpoints, resume, stopping on SIGINT / SIGTERM / SIGHUP and non-finite-loss handling.
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "rla/data/loader.h"
#include "rla/engine/evaluate.h"
#include "rla/engine/metrics.h"
#include "rla/engine/optim.h"
#include "rla/engine/run.h"
#include "rla/engine/stop.h"
#include "rla/models/network.h"

namespace rla::engine {

struct TrainResult {
  std::vector<EpochMetrics> history;  ///< every epoch of the run, resumed ones included
  double best_top1 = 0;               ///< best held-out (validation, else test) top-1 of any epoch
  std::optional<RunResult> final;     ///< set once all epochs are done (also in result.json)
  std::string run_dir;
  bool stopped_early = false;  ///< a stop request (signal) or max_steps: a resumable checkpoint was written
};

/// Thrown when the loss becomes NaN or infinite; the last good checkpoint is kept.
class NonFiniteLoss : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Extension points of the training loop, for data parallelism (distributed/data_parallel.h).
/// Everything that changes what is trained (exit heads, frozen backbone or BN) is TrainConfig.
struct TrainHooks {
  /// Called once after the model (and its exit heads, if any: `extra`) are built and loaded
  /// (e.g. broadcast rank 0's state). Frozen parameters have requires_grad false by then.
  std::function<void(models::NetworkImpl& net, torch::nn::Module* extra)> on_ready;
  /// Called after backward, before the optimiser step (e.g. all-reduce the gradients).
  std::function<void(const std::vector<torch::Tensor>& params)> after_backward;
  /// Combines a meter across processes (e.g. all-reduce of its sums).
  std::function<void(ClassificationMeter& meter)> reduce_meter;
  /// Called before a held-out evaluation of `net` (the model or its weight average), e.g. to give
  /// every rank rank 0's BatchNorm statistics.
  std::function<void(models::NetworkImpl& net)> before_evaluation;
  /// Collective, called once by every rank before anything is built: true when every rank
  /// passed true. Rank 0 passes whether it could claim the run folder (engine/run_folder.h), so
  /// that the other ranks stop at once when it could not instead of waiting for it.
  std::function<bool(bool ok)> all_ranks_ok;
  int rank = 0, world_size = 1;  ///< data sharding; only rank 0 writes files and logs
};

/// The decay applied at each weight-average update: torchvision's budget adjustment of the
/// nominal ema_decay, 1 - min(1, (1 - ema_decay) * world_size * batch_size * ema_steps / epochs).
double ema_update_decay(const TrainConfig& config, int world_size = 1);

/// Runs (or resumes) a training run in config.run.out_dir, which rank 0 holds locked from before
/// anything is loaded until it returns (engine/run_folder.h: RunFolderBusy when another process
/// writes the folder, ExistingRun when it holds a run and neither resume nor overwrite is set).
/// Throws util::FieldError naming the field of a bad option (validate_train_config), and on data
/// errors and a non-finite loss. Stops early on request_stop (engine/stop.h).
TrainResult train(const TrainConfig& config, const TrainHooks& hooks = {});

/// Writes training_curves.png: loss and top-1 vs epoch, train and held-out (`held_out_name`:
/// "validation" or "test"), two panels.
void save_training_curves(const std::string& path, const std::vector<EpochMetrics>& history,
                          const std::string& title, const std::string& held_out_name = "test");

}  // namespace rla::engine
