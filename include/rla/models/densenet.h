#pragma once
// CIFAR-style DenseNet (Huang et al.) and RLA-DenseNet (docs/models.md). Names: conv1,
// blocks.{b}.{l}.{bn1,conv1[,bn2,conv2]}, transitions.{b}.{bn,conv}, bn_final, fc; RLA adds
// conv_outs.{b}, recurrent_convs.{b}, stage_bns.{b}.{l} and bn2 (the state's head BN).
#include "rla/models/network.h"
#include "rla/models/rla_cell.h"

namespace rla::models {

struct DenseNetOptions {
  TORCH_ARG(int64_t, growth) = 12;
  TORCH_ARG(std::vector<int64_t>, layers) = std::vector<int64_t>{12, 12, 12};  ///< per dense block
  TORCH_ARG(bool, bottleneck) = false;   ///< BN-ReLU-1x1(4*growth) before the 3x3
  TORCH_ARG(double, compression) = 1.0;  ///< channel factor at each transition
  TORCH_ARG(int64_t, init_features) = 16;
  TORCH_ARG(int64_t, in_channels) = 3;
  TORCH_ARG(int64_t, num_classes) = 10;
  TORCH_ARG(int64_t, rla_channels) = 0;  ///< k; 0 builds the plain DenseNet
  TORCH_ARG(Aggregation, aggregation) = Aggregation::kRla;
};

/// One dense layer: y = conv(relu(bn(cat(features, h)))) with `growth` output channels.
class DenseLayerImpl : public torch::nn::Module {
 public:
  DenseLayerImpl(int64_t in, int64_t growth, bool bottleneck);
  torch::Tensor forward(const torch::Tensor& input);

 private:
  BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  Conv2d conv1_{nullptr}, conv2_{nullptr};
};
TORCH_MODULE(DenseLayer);

/// Transition: BN-ReLU-1x1 conv, then 2x2 average pooling.
class TransitionImpl : public torch::nn::Module {
 public:
  TransitionImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  BatchNorm2d bn_{nullptr};
  Conv2d conv_{nullptr};
};
TORCH_MODULE(Transition);

class DenseNetImpl : public NetworkImpl {
 public:
  explicit DenseNetImpl(const DenseNetOptions& options);
  FlowState stem(const torch::Tensor& input) override;
  /// Block = dense layer; the first layer of dense block b > 0 first runs transition b-1.
  void run_block(size_t index, FlowState& state) override;
  torch::Tensor head(const FlowState& state) override;
  int64_t state_channels() const override { return options_.rla_channels(); }
  std::shared_ptr<NetworkImpl> copy() const override;
  /// DenseNet's BNs precede their convolutions (pre-activation), so none folds there; the RLA
  /// state BNs fold into per-block conv_outs.
  void prepare_inference(const InferenceOptions& options) override;

 private:
  DenseNetOptions options_;
  Conv2d conv1_{nullptr};
  BatchNorm2d bn_final_{nullptr}, bn2_{nullptr};
  Linear fc_{nullptr};
  std::vector<DenseLayer> layer_list_;
  std::vector<Transition> transitions_;
  std::vector<bool> starts_block_;
  std::vector<BatchNorm2d> state_bns_;
  std::vector<StageCell> cells_;
  std::vector<FoldedCell> folded_cells_;  ///< inference form: one per layer
};

}  // namespace rla::models
