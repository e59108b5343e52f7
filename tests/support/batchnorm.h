#pragma once
// Test helper: BatchNorms with non-trivial statistics, so that folding them has work to do.
#include <torch/torch.h>

#include "rla/models/layers.h"

namespace rla::test {

/// Random affine parameters and running statistics for every BatchNorm2d of `net`.
inline void randomize_batchnorms(torch::nn::Module& net) {
  torch::NoGradGuard no_grad;
  for (auto& m : net.modules(/*include_self=*/false)) {
    if (auto* bn = m->as<models::BatchNorm2dImpl>()) {
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.normal_(0.0, 0.2);
      bn->running_mean.normal_(0.0, 0.2);
      bn->running_var.uniform_(0.5, 2.0);
    }
  }
}

}  // namespace rla::test
