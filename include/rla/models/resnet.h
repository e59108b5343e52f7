#pragma once
// ResNet, ResNeXt and their RLA forms (docs/models.md), ImageNet- and CIFAR-style, in one
// configurable class. Plain nets use torchvision's names (conv1 bn1 layer1.. fc); RLA nets use
// the official RLA_ResNet names (conv_outs recurrent_convs stages stage_bns bn2 fc).
#include <vector>

#include "rla/models/network.h"
#include "rla/models/rla_cell.h"

namespace rla::models {

struct ResNetOptions {
  TORCH_ARG(bool, bottleneck) = true;  ///< Bottleneck (x4) or BasicBlock
  TORCH_ARG(std::vector<int64_t>, layers) = std::vector<int64_t>{3, 4, 6, 3};  ///< blocks per stage
  TORCH_ARG(std::vector<int64_t>, planes) = std::vector<int64_t>{64, 128, 256, 512};
  TORCH_ARG(bool, cifar_stem) = false;  ///< 3x3/1 conv to planes[0], no max-pool (else 7x7/2 + pool)
  TORCH_ARG(int64_t, in_channels) = 3;
  TORCH_ARG(int64_t, num_classes) = 1000;
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(int64_t, width_per_group) = 64;
  TORCH_ARG(int64_t, rla_channels) = 0;  ///< k; 0 builds the plain network
  TORCH_ARG(Aggregation, aggregation) = Aggregation::kRla;
  TORCH_ARG(bool, se) = false;                        ///< SE after the last BN of each branch
  TORCH_ARG(std::vector<int64_t>, eca_kernels) = {};  ///< ECA kernel per stage; empty = none
  TORCH_ARG(bool, shared) = false;              ///< `_s`: blocks 2.. of a stage share one set of weights
  TORCH_ARG(bool, zero_init_residual) = false;  ///< zero the branch's last BN weight
  /// What the RLA cell folds in as y. kOutput: the block's output relu(branch + shortcut) — what
  /// the official RLA_Bottleneck really passes (its `y` aliases `out`, which the in-place
  /// `out += identity` and ReLU(inplace=True) then overwrite; checked against the fixture
  /// logits). kBranch: the residual branch alone (the paper's diagram).
  TORCH_ARG(StateInput, state_input) = StateInput::kOutput;
};

/// One residual block, optionally taking the RLA state as extra input channels.
/// Python: torchvision Bottleneck / BasicBlock, official RLA_Bottleneck.
class ResBlockImpl : public torch::nn::Module {
 public:
  struct Config {
    int64_t inplanes, planes, stride;
    bool bottleneck;
    int64_t groups, base_width, state_channels;
    bool se;
    int64_t eca_kernel;      ///< 0 = no ECA
    StateInput state_input;  ///< see ResNetOptions::state_input
  };
  /// `share` (may be null): a block of the same shape whose weights this one reuses.
  ResBlockImpl(const Config& cfg, const ResBlockImpl* share);

  /// x: [N, C, H, W]; h: [N, k, H, W] or undefined. Returns {out, y} with
  /// out = relu(branch + shortcut(x)) and y = out or the branch (Config::state_input).
  /// h_zero: h is all zeros (prepared blocks then skip its part of conv1; h may be undefined).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& h,
                                                  bool h_zero = false);
  /// Inference form (NetworkImpl::prepare_inference): every BN folded into its convolution; on
  /// RLA blocks conv1 also split into conv1_x (x's input channels, with the bias) and conv1_h
  /// (h's), used while h is zero, for oneDNN-layout tensors (which cannot be concatenated) and
  /// with `split`. Returns the number of BNs folded.
  int64_t prepare_inference(bool split);
  /// True where the official code avg-pools h (a downsample with stride != 1).
  bool pools_state() const { return pools_state_; }
  int64_t out_channels() const { return out_channels_; }
  BatchNorm2d last_bn() const { return bottleneck_ ? bn3 : bn2; }

  Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  ConvBNAct downsample{nullptr};
  SE se{nullptr};
  ECA eca{nullptr};
  Conv2d conv1_x{nullptr}, conv1_h{nullptr};  ///< inference form of an RLA block only

 private:
  std::pair<torch::Tensor, torch::Tensor> forward_prepared(const torch::Tensor& x, const torch::Tensor& h,
                                                           bool h_zero);
  bool bottleneck_;
  bool split_ = false;
  bool prepared_ = false;
  int64_t state_channels_;
  StateInput state_input_;
  bool pools_state_ = false;
  int64_t out_channels_;
};
TORCH_MODULE(ResBlock);

class ResNetImpl : public NetworkImpl {
 public:
  explicit ResNetImpl(const ResNetOptions& options);
  FlowState stem(const torch::Tensor& input) override;
  void run_block(size_t index, FlowState& state) override;
  torch::Tensor head(const FlowState& state) override;
  int64_t state_channels() const override { return options_.rla_channels(); }
  const ResNetOptions& options() const { return options_; }
  std::shared_ptr<NetworkImpl> copy() const override;
  /// Folds every BN (stem, blocks, shortcuts, the RLA state BNs into per-block conv_outs). The
  /// mkldnn backend (auto: ImageNet-style stems, where it measured faster) keeps activations in
  /// oneDNN's layout from the stem to the pooling: conv1 runs split, the state scale and the
  /// head BN as depthwise 1x1 convolutions; nets with SE / ECA (which broadcast) stay dense.
  void prepare_inference(const InferenceOptions& options) override;

 private:
  ResNetOptions options_;
  Conv2d conv1_{nullptr};
  BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  Linear fc_{nullptr};
  std::vector<ResBlock> block_list_;
  std::vector<BatchNorm2d> state_bns_;    ///< one per block (RLA cell only)
  std::vector<StageCell> cells_;          ///< one per stage
  std::vector<FoldedCell> folded_cells_;  ///< inference form: one per block
  Conv2d head_bn_conv_{nullptr};          ///< inference form, oneDNN layout: bn2 as a depthwise conv
};

}  // namespace rla::models
