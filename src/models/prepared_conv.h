#pragma once
// A 2-D convolution prepared once for inference as a oneDNN primitive on channels-last float
// tensors, when this build has oneDNN's own headers (Debian's libdnnl-dev: the oneDNN 2.x that
// libtorch_cpu links). ATen's oneDNN path redoes descriptors and weight checks on every call,
// which is most of a small convolution's time at batch 1 (docs/performance.md). Internal to models/.
#include <torch/torch.h>

#include <memory>
#include <vector>

namespace rla::models {

/// Whether convolutions are prepared: the build has oneDNN 2.x headers and RLA_PREPARED_CONV is
/// not "0" (for A/B runs).
bool prepared_convs_enabled();
/// Whether prepared convolutions take their ReLU and residual add as fused post-ops:
/// RLA_FUSED_POST_OPS is not "0" (for A/B runs).
bool fused_post_ops_enabled();

/// What a prepared convolution applies to its output in the same call (oneDNN post-ops), in this
/// order: + `sum_into` (a channels-last float tensor of the output's shape, whose storage then
/// receives the result), * scale + shift (per output channel, [C_out] float), then ReLU or tanh.
struct ConvEpilogue {
  torch::Tensor sum_into;
  torch::Tensor scale, shift;
  bool relu = false, tanh = false;
};

class PreparedConv {
 public:
  virtual ~PreparedConv() = default;
  /// x [N, C_in, H, W] channels-last float CPU -> y [N, C_out, H', W'] channels-last with the
  /// epilogue applied, or an undefined tensor when this convolution cannot run prepared (the
  /// caller falls back).
  virtual torch::Tensor run(const torch::Tensor& x, const ConvEpilogue& epilogue = {}) = 0;

  /// A prepared convolution for weight [C_out, C_in, kh, kw] (float CPU, groups 1), bias [C_out]
  /// or undefined; nullptr when the build has no oneDNN headers or the layer is not supported.
  static std::shared_ptr<PreparedConv> create(const torch::Tensor& weight, const torch::Tensor& bias,
                                              std::vector<int64_t> stride, std::vector<int64_t> padding,
                                              std::vector<int64_t> dilation, int64_t groups);
};

}  // namespace rla::models
