#pragma once
// A learnable synthetic dataset for tests and smoke runs: each class is a fixed random
// low-frequency pattern; each example is that pattern shifted, scaled and noised.
#include "rla/data/dataset.h"

namespace rla::data {

struct SyntheticOptions {
  int64_t size = 512;
  int64_t channels = 1;
  int64_t height = 28, width = 28;
  int64_t num_classes = 10;
  uint64_t seed = 0;    ///< the task: class patterns
  uint64_t split = 0;   ///< which draw of examples (train 0, test 1, ...) from the same task
  double noise = 0.25;  ///< noise amplitude relative to the pattern's
};

/// Deterministic in the options (the same options give byte-identical images).
std::shared_ptr<TensorDataset> make_synthetic(const SyntheticOptions& options);

}  // namespace rla::data
