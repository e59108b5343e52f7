#pragma once
// TorchScript export: a network traced into a TorchScript module that `torch.jit.load` opens in
// Python and `torch::jit::load` in a LibTorch program. What is traced is the network's portable
// inference form (InferenceOptions::portable: BatchNorms folded into the convolutions, plain ATen
// operations only), so the file runs wherever LibTorch runs, at any batch size.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "rla/models/network.h"

namespace rla::io {

struct TorchScriptOptions {
  /// [C, H, W] of the example input the trace runs on (the batch size stays free).
  std::vector<int64_t> input_shape;
  /// Fold every BatchNorm into its convolution (false: the eval-mode graph with its BatchNorms).
  bool fold_batchnorm = true;
};

/// Traces `net` (not modified: a copy is traced) and writes the TorchScript archive to `path`
/// atomically. The module's forward takes float [N, C, H, W] and returns the logits [N, classes].
/// Throws std::invalid_argument on a bad input shape, std::runtime_error when writing fails.
void export_torchscript(const models::NetworkImpl& net, const std::string& path,
                        const TorchScriptOptions& options);

}  // namespace rla::io
