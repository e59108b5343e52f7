#pragma once
// The interface every model in the zoo implements: a stem, a sequence of blocks and a head.
// A plain forward runs them all; early exit (inference/) and feature maps (analysis/) step
// through the blocks one at a time and read the state between them.
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
  torch::Tensor forward(const torch::Tensor& input);

 protected:
  /// Throws unless input is [N, in_channels, H, W].
  static void check_input(const torch::Tensor& input, int64_t in_channels);
  /// The flow before the first block: x and, when k > 0, the zero state h [N, k, H, W].
  static FlowState initial_state(torch::Tensor x, int64_t k);

  std::vector<BlockInfo> blocks_;
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
