#pragma once
// Training checkpoints: model weights (by state_dict name), optimizer state and the loop's
// position, written atomically (temporary file, then rename) so a crash mid-write leaves the
// previous checkpoint intact.
#include <torch/torch.h>

#include <string>

namespace rla::engine {

struct TrainState {
  int64_t epochs_done = 0;  ///< completed epochs
  int64_t next_batch = 0;   ///< > 0 when the checkpoint was taken mid-epoch (Ctrl-C)
  double best_top1 = -1.0;
  int64_t best_epoch = -1;
  double fitted_epochs = 0;     ///< the schedule's length fitted to --time-budget (0: not fitted)
  torch::Tensor partial_meter;  ///< the running train meter of an unfinished epoch
  std::string config_json;      ///< the run's config, for `rla eval` and resumption checks
};

/// Writes model, optimizer (may be null), state and an optional extra module trained alongside
/// the model (e.g. exit heads, stored under "extra/") to `path` atomically.
/// `average` (may be null): an exponential moving average of the model's weights ("ema/").
void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const TrainState& state,
                     const torch::nn::Module* extra = nullptr, const torch::nn::Module* average = nullptr);
/// Reads a checkpoint into `model` (names and shapes must match; the error lists what differs,
/// and then nothing has been changed),
/// `optimizer` (may be null) and `extra` (may be null; must then be in the file) and returns the
/// stored state. Throws std::runtime_error naming the file.
/// `average` (may be null; must then be in the file): the weight average saved beside the model.
TrainState load_checkpoint(const std::string& path, torch::nn::Module& model,
                           torch::optim::Optimizer* optimizer, torch::nn::Module* extra = nullptr,
                           torch::nn::Module* average = nullptr);
/// Reads only the weight average stored in a checkpoint into `model` (a network of the same
/// structure). Throws std::runtime_error naming the file when it has none or it does not fit.
void load_checkpoint_average(const std::string& path, torch::nn::Module& model);
/// True if the checkpoint stores a weight average (EMA).
bool checkpoint_has_average(const std::string& path);
/// The training configuration (JSON text) stored in a checkpoint; empty if it has none.
std::string read_checkpoint_config(const std::string& path);
/// True for a readable checkpoint written by save_checkpoint (false for other files, e.g. a
/// torch.save state dict, and for files that cannot be read).
bool is_training_checkpoint(const std::string& path);
/// True if the checkpoint stores an extra module (e.g. exit heads).
bool checkpoint_has_extra(const std::string& path);

}  // namespace rla::engine
