#pragma once
// MobileNetV2 (torchvision names: features.* classifier.1) and its RLA forms (official names:
// conv1 stages conv_outs recurrent_convs|recurrent_dsconvs stage_bns conv2 bn2 classifier.1),
// docs/models.md. One recurrent conv is shared by the whole network; the official code lists it once
// per stride-2 "cell", so it appears under several keys that hold one tensor.
#include "rla/models/network.h"
#include "rla/models/rla_cell.h"

namespace rla::models {

struct MobileNetV2Options {
  TORCH_ARG(int64_t, in_channels) = 3;
  TORCH_ARG(int64_t, num_classes) = 1000;
  TORCH_ARG(int64_t, rla_channels) = 0;         ///< k; 0 builds torchvision's mobilenet_v2
  TORCH_ARG(bool, depthwise_recurrent) = true;  ///< dsrla_ (depthwise 3x3) vs rla_ (full 3x3)
  TORCH_ARG(Aggregation, aggregation) = Aggregation::kRla;
  TORCH_ARG(bool, eca) = false;  ///< ECA per block: kernel 1 below 96 channels, else 3
  TORCH_ARG(double, dropout) = 0.2;
};

/// Inverted residual. Plain: torchvision layout (`conv` = [pw] dw pw-linear bn). RLA: the
/// official layout, `conv1x1` expansion then `conv` = dw(hidden+k) pw-linear bn with h
/// concatenated after the expansion. x: [N, C, H, W]; h: [N, k, H, W] or undefined.
class InvertedResidualImpl : public torch::nn::Module {
 public:
  InvertedResidualImpl(int64_t inp, int64_t oup, int64_t stride, int64_t expand, int64_t k,
                       int64_t eca_kernel);
  /// Returns {out, y}: y is the projected output, out = x + y where shapes allow.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& h);
  bool strided() const { return stride_ != 1; }
  /// Inference form: every BN folded into its convolution. Returns the number folded.
  int64_t prepare_inference();

 private:
  int64_t stride_;
  bool use_res_;
  std::shared_ptr<torch::nn::Module> conv_;  ///< the `conv` container (depthwise, project, bn)
  std::string project_name_;                 ///< project's key inside it
  ConvBNAct expand_{nullptr}, depthwise_{nullptr};
  Conv2d project_{nullptr};
  BatchNorm2d project_bn_{nullptr};
  ECA eca_{nullptr};
};
TORCH_MODULE(InvertedResidual);

class MobileNetV2Impl : public NetworkImpl {
 public:
  explicit MobileNetV2Impl(const MobileNetV2Options& options);
  FlowState stem(const torch::Tensor& input) override;
  void run_block(size_t index, FlowState& state) override;
  torch::Tensor head(const FlowState& state) override;
  int64_t state_channels() const override { return options_.rla_channels(); }
  std::shared_ptr<NetworkImpl> copy() const override;
  /// Folds every BN (stem, expansions, depthwise, projections, the last 1x1, the RLA state BNs
  /// into per-block conv_outs); dense tensors (oneDNN-layout tensors have no ReLU6).
  void prepare_inference(const InferenceOptions& options) override;

 private:
  MobileNetV2Options options_;
  ConvBNAct first_{nullptr}, last_{nullptr};
  BatchNorm2d bn2_{nullptr};
  Linear classifier_{nullptr};
  std::vector<InvertedResidual> block_list_;
  std::vector<BatchNorm2d> state_bns_;
  std::vector<StageCell> cells_;          ///< one per setting row
  std::vector<FoldedCell> folded_cells_;  ///< inference form: one per block
};

}  // namespace rla::models
