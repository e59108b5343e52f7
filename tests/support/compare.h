#pragma once
// Tensor comparisons shared by the test binaries.
#include <torch/torch.h>

#include <algorithm>

namespace rla::test {

/// max |a - b| over max |b| (1e-12 at least): the error of a against the reference b.
inline double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-12);
}

}  // namespace rla::test
