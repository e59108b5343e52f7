#pragma once
// Internal pieces of the fast inference path (fast_inference.h), shared by the per-family
// rewrites in fast_resnet.cpp and fast_mobilenet.cpp. Not installed; not part of the API.
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

#include "rla/inference/fast_inference.h"
#include "rla/models/rla_cell.h"

namespace rla::models {
class ResNetImpl;
class MobileNetV2Impl;
}  // namespace rla::models

namespace rla::inference {

struct FastNetwork::Impl {
  virtual ~Impl() = default;
  /// input [N, C, H, W] (any layout) -> logits [N, classes].
  virtual torch::Tensor forward(const torch::Tensor& input) = 0;
  virtual std::string backend() const { return channels_last ? "channels-last" : "nchw"; }
  int64_t folded = 0;
  bool channels_last = true;
  bool split = false;

  torch::Tensor format(const torch::Tensor& x) const {
    return channels_last ? x.contiguous(at::MemoryFormat::ChannelsLast) : x.contiguous();
  }
  /// The RLA state before the first block: zeros [N, k, H, W] beside x, or undefined if k = 0.
  torch::Tensor zero_state(const torch::Tensor& x, int64_t k) const {
    return k > 0 ? format(torch::zeros({x.size(0), k, x.size(2), x.size(3)}, x.options())) : torch::Tensor();
  }
};

namespace detail {

using ModuleMap = std::map<std::string, std::shared_ptr<torch::nn::Module>>;

ModuleMap module_map(const torch::nn::Module& net);

template <class T>
std::shared_ptr<T> find(const ModuleMap& m, const std::string& name) {
  auto it = m.find(name);
  return it == m.end() ? nullptr : std::dynamic_pointer_cast<T>(it->second);
}

template <class T>
std::shared_ptr<T> need(const ModuleMap& m, const std::string& name) {
  auto p = find<T>(m, name);
  TORCH_CHECK(p, "fast inference: the network has no module '", name, "' of the expected type");
  return p;
}

/// A BN that cannot be folded, as y = x * scale + shift with [1, C, 1, 1] factors.
struct Affine {
  torch::Tensor scale, shift;
  explicit Affine(const models::BatchNorm2dImpl* bn = nullptr);
  torch::Tensor operator()(const torch::Tensor& x) const { return torch::addcmul(shift, x, scale); }
  /// The same map as a depthwise 1x1 convolution (for oneDNN tensors, which do not broadcast).
  FoldedConv as_conv(bool with_shift) const;
};

/// Output channels [begin, end) of `c` (a depthwise conv keeps one group per channel).
FoldedConv slice_outputs(const FoldedConv& c, int64_t begin, int64_t end);

/// The RLA state update of one block (rla_cell.cpp `aggregate`), with the kRla cell's BN folded:
/// bn(h + conv_out(y)) = (s * W) y + shift + s * h, so conv_out absorbs the BN and h is scaled
/// by s in one fused multiply-add (a depthwise 1x1 conv on oneDNN tensors).
struct FastCell {
  models::Aggregation kind = models::Aggregation::kRla;
  FoldedConv out;                         ///< conv_out (bn folded) or concat_conv
  FoldedConv out_y, out_h;                ///< concat_conv split along its input (y | h)
  torch::Tensor h_scale;                  ///< [1, k, 1, 1] (kRla)
  FoldedConv h_scale_conv;                ///< h_scale as a depthwise conv (kRla, oneDNN)
  std::shared_ptr<FoldedConv> recurrent;  ///< shared by the blocks of a stage

  /// h [N, k, H, W] (all zeros when h_zero), y [N, C, H, W] -> the new state [N, k, H, W].
  torch::Tensor update(const torch::Tensor& h, bool h_zero, const torch::Tensor& y) const;
  /// Pre-packs every convolution of the cell for oneDNN.
  void pack();
};

/// Builds the cell of block `b` of stage `s` from the official names.
FastCell make_cell(FastNetwork::Impl& impl, const ModuleMap& m, models::Aggregation kind, int64_t s,
                   int64_t b, const std::string& recurrent_name,
                   std::map<std::string, std::shared_ptr<FoldedConv>>& shared);

/// The rewritten families; each reads `net`'s weights once.
std::shared_ptr<FastNetwork::Impl> make_fast_resnet(const models::ResNetImpl& net, const FastOptions& o);
std::shared_ptr<FastNetwork::Impl> make_fast_mobilenet(const models::MobileNetV2Impl& net,
                                                       const FastOptions& o);

}  // namespace detail
}  // namespace rla::inference
