#pragma once
// Records every counted layer call made while an OpCounter is alive on the current thread.
// The models' layers (rla/models/layers.h) report themselves here; `rla summary` reads the list.
#include <cstdint>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace rla::models {

/// One call of a counted layer: what ran, its output shape and its cost.
struct OpRecord {
  const torch::nn::Module* module = nullptr;  ///< the layer, or null for a functional op
  std::string kind;                           ///< "Conv2d", "BatchNorm2d", "Linear", ...
  std::string label;                          ///< name for functional ops (e.g. "maxpool")
  std::vector<int64_t> out_shape;
  int64_t macs = 0;      ///< multiply-accumulates (conv and linear only)
  int64_t thop_ops = 0;  ///< what thop's `profile` counts for this call (docs/models.md, "Counting")
};

/// RAII scope: while alive, counted layers on this thread append to `records`.
/// Scopes nest; the innermost one receives the records.
class OpCounter {
 public:
  OpCounter();
  ~OpCounter();
  OpCounter(const OpCounter&) = delete;
  OpCounter& operator=(const OpCounter&) = delete;

  std::vector<OpRecord> records;

 private:
  OpCounter* previous_;
};

/// The innermost live counter on this thread, or null (the common, zero-cost case).
OpCounter* active_counter();

}  // namespace rla::models
