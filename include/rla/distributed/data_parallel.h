#pragma once
// Data parallelism for engine::train over a ProcessGroup, mirroring PyTorch's
// torch.nn.parallel.DistributedDataParallel: rank 0's parameters and buffers are broadcast at
// start; gradients are flattened into buckets (filled in reverse parameter order, as backward
// produces them), summed across ranks and divided by the world size; BatchNorm statistics stay
// per-rank during training and rank 0's are broadcast before each evaluation; meters are summed.
#include <memory>
#include <string>

#include "rla/distributed/process_group.h"
#include "rla/engine/trainer.h"

namespace rla::distributed {

/// What the gradient synchronisation did, for the closing summary (filled in as training runs).
struct SyncStats {
  int64_t steps = 0;
  double sync_seconds = 0;  ///< time after_backward blocked: waiting for, and copying, gradients
  int64_t buckets = 0;      ///< gradient buckets per step
  int64_t grad_numel = 0;   ///< gradient values all-reduced per step
  std::shared_ptr<torch::nn::Module> model;  ///< the trained model (kept alive for the fingerprint)
  std::shared_ptr<torch::nn::Module> extra;
};

struct DataParallelOptions {
  double bucket_mb = 25;  ///< gradient bucket size cap (DDP's bucket_cap_mb)
  /// Start each bucket's all-reduce from autograd hooks as soon as its gradients are ready, so
  /// communication overlaps the rest of backward; false: everything after backward.
  bool overlap = true;
  std::shared_ptr<SyncStats> stats;  ///< optional: receives the statistics
};

/// Hooks that make engine::train data-parallel over `pg`. `base` hooks (e.g. early-exit heads)
/// keep working: their make_extra / forward_loss / freeze_model are kept and on_ready /
/// after_backward / reduce_meter chained. Every rank must call train() with the same config.
/// Stop signals: install_coordinated_stop() makes all ranks stop after the same step.
engine::TrainHooks make_data_parallel_hooks(ProcessGroup& pg, engine::TrainHooks base = {},
                                            DataParallelOptions options = {});

/// Installs the stop signals (engine::install_stop_signals: SIGINT, SIGTERM, SIGHUP) so that the
/// first one is shared with all ranks at the next gradient sync: every rank stops after the same
/// step and rank 0 saves one checkpoint, whichever rank got the signal. A second SIGINT still
/// ends the process at once.
void install_coordinated_stop();

/// Sum of p * (1 + position) over all parameter values, in double: equal on all ranks iff (to
/// rounding) their parameters are equal; printed to compare ranks.
double parameter_fingerprint(const torch::nn::Module& module);

/// Collective: checks that every rank's parameters equal rank 0's (throws naming the rank
/// otherwise) and returns this rank's one-line summary (steps, all-reduce ms/step, fingerprint).
std::string finish_data_parallel(ProcessGroup& pg, const SyncStats& stats);

/// A data-parallel training run as `rla train` sets it up from the environment.
struct DataParallelRun {
  explicit DataParallelRun(const DistConfig& config) : group(config) {}
  ProcessGroup group;
  std::shared_ptr<SyncStats> stats = std::make_shared<SyncStats>();
  /// After train(): compares parameters across ranks and returns this rank's summary line.
  std::string finish() { return finish_data_parallel(group, *stats); }
};

/// When WORLD_SIZE > 1 in the environment or `timeout_s` > 0 (0: default 300 s): joins the
/// process group (config_from_env), wraps `hooks` with make_data_parallel_hooks and installs the
/// coordinated stop signals. Returns null (and leaves `hooks` alone) otherwise.
std::unique_ptr<DataParallelRun> start_data_parallel_from_env(double timeout_s, DataParallelOptions options,
                                                              engine::TrainHooks& hooks);

}  // namespace rla::distributed
