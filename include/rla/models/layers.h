#pragma once
// Building blocks shared by every model family: the standard layers, made countable for
// `rla summary` (each call reports its cost to the active models::OpCounter, if any), the
// stateless ops the models use, and the SE / ECA channel-attention modules.
#include <torch/torch.h>

#include <string>

namespace rla::models {

class BatchNorm2dImpl;
class PreparedConv;

/// nn.Conv2d with "same" padding (kernel / 2). Same parameters and state_dict names; reports
/// out_numel * (C_in/groups * kh * kw). For inference (NetworkImpl::prepare_inference) it can
/// carry a folded BatchNorm as its bias and call oneDNN directly.
class Conv2dImpl : public torch::nn::Conv2dImpl {
 public:
  Conv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t groups = 1,
             bool bias = false);
  /// x: [N, C_in, H, W] -> [N, C_out, H', W']. A oneDNN (mkldnn-layout) x gives a oneDNN result.
  torch::Tensor forward(const torch::Tensor& x);

  // ---- inference form ------------------------------------------------------------------------
  /// relu?(this(x) + add), one oneDNN call with fused post-ops where this convolution is prepared
  /// (use_onednn), else the separate operations. `add` (optional) must have the result's shape;
  /// its storage may receive the result, so the caller must not need it afterwards. No autograd.
  torch::Tensor forward_fused(const torch::Tensor& x, bool relu, const torch::Tensor& add = {});
  /// tanh((this(x) + add) * scale + shift) (scale, shift: [C_out]), one oneDNN call where this
  /// convolution is prepared and `fusable(x)`, else the separate operations: the RLA state
  /// update with its BatchNorm (docs/performance.md, round five). `add`'s storage may receive
  /// the result. No autograd.
  torch::Tensor forward_state_update(const torch::Tensor& x, const torch::Tensor& add,
                                     const torch::Tensor& scale, const torch::Tensor& shift);
  /// Whether forward_fused / forward_state_update run as one prepared oneDNN call for x.
  bool fusable(const torch::Tensor& x) const;
  /// A new convolution computing bn(this(x)) with bn's running statistics (nullptr: a plain
  /// copy): weight * s, bias beta - mean * s (+ s * own bias), s = gamma / sqrt(var + eps),
  /// computed in float64 and stored in the weight's dtype. Input channels [in_begin, in_end)
  /// only, when in_end > in_begin (a weight split along its input). This conv is not changed.
  std::shared_ptr<Conv2dImpl> folded(const BatchNorm2dImpl* bn, int64_t in_begin = 0,
                                     int64_t in_end = 0) const;
  /// Channels-last float CPU inputs call oneDNN's convolution directly (at::conv2d sends small
  /// ones to a slower native kernel); with `pack`, the weight is also re-laid out once for
  /// oneDNN-layout inputs. Inference only: the direct call has no autograd.
  void use_onednn(bool pack);
  const std::vector<int64_t>& padding() const { return padding_; }

 private:
  std::vector<int64_t> padding_;
  bool direct_ = false;
  torch::Tensor packed_;
  std::shared_ptr<PreparedConv> prepared_;  ///< a oneDNN primitive built once (src/models/prepared_conv.h)
};
TORCH_MODULE(Conv2d);

/// nn.Conv1d (used by ECA). Reports like Conv2d.
class Conv1dImpl : public torch::nn::Conv1dImpl {
 public:
  using torch::nn::Conv1dImpl::Conv1dImpl;
  torch::Tensor forward(const torch::Tensor& x);
};
TORCH_MODULE(Conv1d);

/// nn.BatchNorm2d (affine, tracked statistics, momentum 0.1, eps 1e-5): weight, bias,
/// running_mean, running_var, num_batches_tracked, in Python's order. thop counts 2 * numel.
/// (Written out rather than derived from LibTorch's, whose base class is not fully exported.)
class BatchNorm2dImpl : public torch::nn::Cloneable<BatchNorm2dImpl> {
 public:
  explicit BatchNorm2dImpl(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  /// Inference: y = x * scale + shift with the running statistics, as [1, C, 1, 1] factors.
  std::pair<torch::Tensor, torch::Tensor> affine() const;
  /// The same map as a depthwise 1x1 convolution (oneDNN-layout tensors do not broadcast).
  std::shared_ptr<Conv2dImpl> as_conv(bool with_shift) const;

  int64_t channels;
  double eps, momentum;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  /// Set when the BN was folded into the convolution before it: forward returns x unchanged.
  bool folded = false;
};
TORCH_MODULE(BatchNorm2d);

/// nn.Linear. MACs and thop ops are in_features * out_numel.
class LinearImpl : public torch::nn::LinearImpl {
 public:
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& x);
};
TORCH_MODULE(Linear);

/// A bias-free k x k convolution with "same" padding (k / 2), as every model here uses.
Conv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t groups = 1);
BatchNorm2d make_bn(int64_t channels);

/// nn.Sequential(conv, bn[, relu6]) — torchvision's ConvBNReLU / Conv2dNormActivation.
/// Children "0" (conv) and "1" (bn); the ReLU6 is a function call, so it has no key.
class ConvBNActImpl : public torch::nn::Module {
 public:
  ConvBNActImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups, bool relu6);
  torch::Tensor forward(const torch::Tensor& x);
  /// Inference: folds bn into a fresh conv (registered in its place); bn becomes a pass-through.
  void fold();
  Conv2d conv{nullptr};
  BatchNorm2d bn{nullptr};

 private:
  bool relu6_;
};
TORCH_MODULE(ConvBNAct);

/// Squeeze-and-excitation (official SELayer): x * sigmoid(fc2(relu(fc1(gap(x))))), bias-free FCs
/// registered as `fc.0` and `fc.2`. x: [N, C, H, W].
class SEImpl : public torch::nn::Module {
 public:
  SEImpl(int64_t channels, int64_t reduction = 16);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(SE);

/// Efficient channel attention (official eca_layer): x * sigmoid(conv1d_k(gap(x)) along channels).
/// One bias-free Conv1d registered as `conv`. x: [N, C, H, W].
class ECAImpl : public torch::nn::Module {
 public:
  explicit ECAImpl(int64_t kernel);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  Conv1d conv_{nullptr};
};
TORCH_MODULE(ECA);

// ---- stateless ops, counted like thop counts the modules the official code uses -----------

/// nn.AvgPool2d(2, 2) on the aggregation state at a downsampling block. Odd sizes round up
/// (ceil mode) so the state always matches the main path's ceil(H/2).
torch::Tensor avg_pool_2x2(const torch::Tensor& x, const char* label = "h_pool");
/// AdaptiveAvgPool2d(1) + flatten: [N, C, H, W] -> [N, C]. thop counts (H*W + 1) * N * C when
/// the reference code pools with a module (`thop_counted`), nothing when it calls the function.
torch::Tensor global_avg_pool(const torch::Tensor& x, bool thop_counted = true);
/// MaxPool2d(3, 2, 1) of the ImageNet stem (thop: 0 ops, listed for the table).
torch::Tensor max_pool_3x3s2(const torch::Tensor& x);

/// Inference: replaces `conv` (registered in `owner` as `name`) by conv.folded(bn) and makes
/// `bn` a pass-through. A shared conv is left alone: the owner gets its own folded copy.
void fold_conv_bn(torch::nn::Module& owner, const std::string& name, Conv2d& conv, BatchNorm2d& bn);

/// Kaiming-normal (fan_out, relu) for every conv weight; BatchNorm weight 1 and bias 0, the
/// torchvision / official initialisation. Linear layers keep their default.
void init_conv_bn(torch::nn::Module& root);

}  // namespace rla::models
