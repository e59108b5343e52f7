#pragma once
// State dicts between files and modules: find the state dict inside a checkpoint, load it into
// a module by name and shape (PyTorch's load_state_dict), save a module the way
// torch.save(model.state_dict(), path) does.
#include <string>
#include <utility>
#include <vector>

#include "rla/io/pickle.h"

namespace torch::nn {
class Module;
}

namespace rla::io {

/// (name, tensor) pairs in state_dict order.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

struct StateDictOptions {
  /// Key of the state dict in a checkpoint dict. Empty: "state_dict", then "model", then
  /// "model_state_dict", then the top level itself (a plain torch.save(model.state_dict())).
  std::string key;
  /// Removed from every name that starts with it ("module." from DataParallel/DDP); empty: none.
  std::string strip_prefix = "module.";
};

/// The state dict inside `checkpoint` (e.g. the official {'epoch', 'arch', 'state_dict',
/// 'best_acc1', 'optimizer'}), names prefix-stripped, in file order. Throws if it is missing
/// or holds a non-tensor value (the message names the key).
NamedTensors extract_state_dict(const PyValue& checkpoint, const StateDictOptions& options = {});

/// read_pytorch_file + extract_state_dict.
NamedTensors read_state_dict(const std::string& path, const StateDictOptions& options = {});

/// An OrderedDict name -> tensor, as Python's Module.state_dict() returns.
PyValue state_dict_value(const NamedTensors& tensors);

/// Writes `tensors` as torch.save(OrderedDict) would (atomic; see write_pytorch_file).
void write_state_dict(const std::string& path, const NamedTensors& tensors);

struct LoadOptions {
  /// Strict: every key must match by name and shape, else nothing is copied and the error lists
  /// the missing, unexpected and mismatched keys. Non-strict (fine-tuning, e.g. a new class
  /// count): copies what matches and reports the rest.
  bool strict = true;
};

struct LoadReport {
  size_t loaded = 0;                    ///< module entries copied from the file
  std::vector<std::string> missing;     ///< in the module, not in the file
  std::vector<std::string> unexpected;  ///< in the file, not in the module
  std::vector<std::string> mismatched;  ///< "name: file [a, b] vs module [c, d]"
  /// BatchNorm num_batches_tracked counters missing from the file (pre-1.0 checkpoints);
  /// tolerated even in strict mode, as PyTorch does.
  std::vector<std::string> tolerated;
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  /// One line, e.g. "loaded 413 tensors; missing: fc.weight, fc.bias; ...".
  std::string summary() const;
};

/// Copies `tensors` into the module's parameters and buffers (running stats,
/// num_batches_tracked) by their rla::models::state_dict names; values are converted to the
/// module tensor's dtype and device. Mirrors torch.nn.Module.load_state_dict.
LoadReport load_state_dict(torch::nn::Module& module, const NamedTensors& tensors,
                           const LoadOptions& options = {});

/// The module's state dict (rla::models::state_dict) written with write_state_dict.
void save_module(const std::string& path, const torch::nn::Module& module);

}  // namespace rla::io
