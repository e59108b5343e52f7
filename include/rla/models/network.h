#pragma once
// The interface every model in the zoo implements: a stem, a sequence of blocks and a head.
// A plain forward runs them all; early exit (inference/), feature maps (tasks/) and backbone
// features (models/backbone.h) step through the blocks one at a time and read the state between
// them.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace rla::models {

/// What flows along depth: the main path `x` [N, C, H, W] and, on RLA nets, the aggregation
/// state `h` [N, k, H, W] (undefined on plain nets).
struct FlowState {
  torch::Tensor x;
  torch::Tensor h;
  /// h is known to be all zeros (before the first state update). Only networks prepared for
  /// inference use it, to skip h's terms; h may then be undefined (oneDNN-layout flows).
  bool h_zero = false;
};

/// How NetworkImpl::prepare_inference rewrites a network.
struct InferenceOptions {
  /// Weights and activations in NHWC (channels-last) memory format.
  TORCH_ARG(bool, channels_last) = true;
  /// conv1(cat(x, h)) as conv1_x(x) + conv1_h(h) (the weight split along its input channels).
  /// ResNets already split where convolutions are prepared with fused post-ops (the sum is free).
  TORCH_ARG(bool, split_concat) = false;
  /// "mkldnn": activations stay in oneDNN's blocked layout with pre-packed weights (ImageNet-style
  /// ResNets without SE/ECA; others fall back to dense); "dense": ordinary tensors; "auto": what
  /// measured faster for the family on the project's CPUs, AVX-512 and AVX2 (docs/performance.md).
  TORCH_ARG(std::string, backend) = "auto";
  /// Plain ATen operations only (no direct oneDNN calls, no oneDNN layout): what graph export
  /// (ONNX, TorchScript) traces.
  TORCH_ARG(bool, portable) = false;
};

/// Static description of one block, for exit heads and reports.
struct BlockInfo {
  std::string name;        ///< e.g. "stages.1.0" or "layer2.0"
  int64_t stage = 0;       ///< stage (row / dense block) index
  int64_t x_channels = 0;  ///< channels of x after this block
  int64_t h_channels = 0;  ///< channels of h after this block (0 on plain nets)
};

class NetworkImpl : public torch::nn::Module {
 public:
  /// Stem: input [N, C_in, H, W] -> state before the first block (h = zeros on RLA nets).
  virtual FlowState stem(const torch::Tensor& input) = 0;
  /// Runs block `index` (0-based, < blocks().size()) and, on RLA nets, its state update.
  virtual void run_block(size_t index, FlowState& state) = 0;
  /// Final head: state after the last block -> logits [N, classes].
  virtual torch::Tensor head(const FlowState& state) = 0;
  /// The blocks in execution order.
  const std::vector<BlockInfo>& blocks() const { return blocks_; }
  /// k, the aggregation state's channel count; 0 for plain networks.
  virtual int64_t state_channels() const { return 0; }
  /// Full forward: stem, every block, head. input [N, C_in, H, W] -> logits [N, classes].
  virtual torch::Tensor forward(const torch::Tensor& input);

  /// A network of the same structure holding copies of every parameter and buffer (same
  /// dtypes and devices); modules shared inside this one are shared inside the copy.
  virtual std::shared_ptr<NetworkImpl> copy() const = 0;
  /// Rewrites this network, in place and for good, into its inference form (eval mode): every
  /// BatchNorm that follows a convolution folded into it (the RLA state BN into conv_out),
  /// weights in the chosen memory format, convolutions calling oneDNN directly, and for some
  /// families oneDNN-layout activations (InferenceOptions). The forward then equals the eval
  /// forward of the original within float rounding, but can no longer be trained: call it on a
  /// copy(). Throws std::invalid_argument for an unknown backend.
  virtual void prepare_inference(const InferenceOptions& options);
  /// After prepare_inference: "mkldnn", "channels-last" or "nchw" (what a float CPU input runs
  /// through); "eager" before.
  const std::string& inference_backend() const { return backend_; }
  /// BatchNorms folded into a convolution by prepare_inference.
  int64_t folded_batchnorms() const { return folded_; }

 protected:
  /// Throws unless input is [N, in_channels, H, W].
  static void check_input(const torch::Tensor& input, int64_t in_channels);
  /// The flow before the first block: x and, when k > 0, the zero state h [N, k, H, W] (for a
  /// oneDNN-layout x, h stays undefined and h_zero set).
  static FlowState initial_state(torch::Tensor x, int64_t k);
  /// Copies every parameter and buffer of `from` into `to` (the same structure), by state_dict.
  static void copy_values(const NetworkImpl& from, NetworkImpl& to);
  /// The input in the prepared form (inference only): oneDNN layout for float CPU inputs on the
  /// mkldnn backend, channels-last when prepared so; unchanged otherwise.
  torch::Tensor inference_input(const torch::Tensor& input) const;
  /// Throws std::invalid_argument for an unknown backend.
  static void check_inference_options(const InferenceOptions& options);
  /// The part of prepare_inference every family shares: eval mode, memory format, direct
  /// oneDNN calls (packing the weights when `pack`) for every registered convolution.
  void finish_inference(const InferenceOptions& options, bool pack, std::string backend);

  std::vector<BlockInfo> blocks_;
  std::string backend_ = "eager";
  int64_t folded_ = 0;
  bool prepared_channels_last_ = false;
};

using Network = std::shared_ptr<NetworkImpl>;

/// Parameters without repeats: a module registered under several names (the shared recurrent
/// conv of MobileNetV2-RLA, the shared blocks of `_s` nets) contributes its tensors once.
/// Use this for optimisers and parameter counts.
std::vector<torch::Tensor> unique_parameters(const torch::nn::Module& module);
/// Number of scalar parameters, each shared tensor counted once.
int64_t count_parameters(const torch::nn::Module& module);

/// Parameters and buffers in PyTorch's `state_dict()` order and naming: per module, its own
/// parameters then its own buffers, then its children in registration order. A module
/// registered under several names appears under each (as in Python).
std::vector<std::pair<std::string, torch::Tensor>> state_dict(const torch::nn::Module& module);

/// Converts conv weights and buffers to channels-last (NHWC) memory format in place.
void to_channels_last(torch::nn::Module& module);

}  // namespace rla::models
