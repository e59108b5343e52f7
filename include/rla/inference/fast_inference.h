#pragma once
// A fast inference path for a trained network (issue 7): BatchNorm folded into the convolution
// it follows, channels-last weights, no autograd (InferenceMode), in-place activations, and the
// RLA state update rewritten so that the per-block BN costs one fused multiply-add instead of a
// separate pass. The source network is only read: its state_dict is left untouched, so the
// same trained model keeps training, saving and evaluating as before.
//
// ResNet-family (plain, RLA, ResNeXt, SE, ECA, shared `_s`, all aggregations) and
// MobileNetV2-family networks get the rewritten forward; its channels-last convolutions call
// oneDNN directly. ImageNet-style ResNets without SE/ECA go further on a CPU LibTorch with
// oneDNN: activations stay in oneDNN's blocked layout from the stem to the pooling (one reorder
// in, one out) and every weight is re-laid out once, at construction, for oneDNN's convolution
// (as torch.jit.optimize_for_inference does in Python); conv1(cat(x, h)) becomes
// conv1_x(x) + conv1_h(h) there, since oneDNN tensors cannot be concatenated. Any other family
// (DenseNet, whose BNs precede their convolutions and so cannot be folded) runs its own forward
// under InferenceMode in eval mode (`FastNetwork::backend()` says which path runs).
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "rla/models/layers.h"
#include "rla/models/network.h"

namespace rla::inference {

struct FastOptions {
  /// Weights and activations in NHWC (channels-last) memory format.
  TORCH_ARG(bool, channels_last) = true;
  /// Replace conv1(cat(x, h)) by conv1_x(x) + conv1_h(h) (the weight split along its input
  /// channels): no concatenated copy, two convolutions instead of one.
  TORCH_ARG(bool, split_concat) = false;
  /// ResNet family on CPU: "mkldnn" keeps activations as oneDNN tensors with pre-packed
  /// weights, "dense" keeps ordinary tensors, "auto" (default) picks oneDNN tensors for
  /// ImageNet-style ResNets, where they measured faster, and dense ones for CIFAR-style ResNets,
  /// where they did not (docs/performance.md). oneDNN needs a LibTorch with MKLDNN and float
  /// CPU inputs; anything else runs the dense path.
  TORCH_ARG(std::string, backend) = "auto";
};

/// A convolution with its following BatchNorm folded in: y = conv(x, w * s) + (beta - mean * s),
/// s = gamma / sqrt(var + eps). Folding is done in float64 and stored in the conv's dtype.
struct FoldedConv {
  torch::Tensor weight;  ///< [C_out, C_in / groups, kh, kw]
  torch::Tensor bias;    ///< [C_out] or undefined
  torch::Tensor packed;  ///< `weight` re-laid out for oneDNN (pack()), or undefined
  std::vector<int64_t> stride, padding, dilation;
  int64_t groups = 1;
  /// x: [N, C_in, H, W] -> [N, C_out, H', W'] (torch.nn.functional.conv2d); a oneDNN (mkldnn
  /// layout) x gives a oneDNN result, through the packed weight when there is one, and a
  /// channels-last float CPU x with a channels-last weight calls oneDNN's convolution directly.
  torch::Tensor operator()(const torch::Tensor& x) const;
  /// Fills `packed` (at::mkldnn_reorder_conv2d_weight); needs a float CPU weight.
  void pack();
};

/// Folds `bn` (may be null: the conv is copied as is) into `conv`. Only `conv`'s input channels
/// [in_begin, in_end) are kept when in_end > in_begin (used to split a weight along its input).
FoldedConv fold_conv_bn(const models::Conv2dImpl& conv, const models::BatchNorm2dImpl* bn,
                        bool channels_last = true, int64_t in_begin = 0, int64_t in_end = 0);

class FastNetwork {
 public:
  /// Builds the fast path from `net`'s current weights and running statistics (a snapshot:
  /// later changes to `net` are not seen, except by the generic fallback, which runs `net`).
  explicit FastNetwork(models::Network net, FastOptions options = {});
  /// input [N, C_in, H, W] -> logits [N, classes], equal to net->eval() forward within float
  /// rounding. Runs under InferenceMode; the result is an inference tensor.
  torch::Tensor forward(const torch::Tensor& input);
  torch::Tensor operator()(const torch::Tensor& input) { return forward(input); }
  /// True when the family has a rewritten forward; false for the eager fallback.
  bool specialized() const;
  /// "mkldnn", "channels-last", "nchw" (rewritten forwards) or "eager" (the fallback): what a
  /// float CPU input runs through.
  std::string backend() const;
  /// Number of BatchNorms folded into a convolution.
  int64_t folded_batchnorms() const;
  const FastOptions& options() const { return options_; }

  struct Impl;

 private:
  FastOptions options_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rla::inference
