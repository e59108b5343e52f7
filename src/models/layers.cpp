#include "rla/models/layers.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "prepared_conv.h"
#include "rla/models/op_counter.h"

namespace rla::models {
namespace {

void report(const torch::nn::Module* m, const char* kind, const char* label, const torch::Tensor& out,
            int64_t macs, int64_t thop) {
  auto* counter = models::active_counter();
  if (counter == nullptr) return;
  models::OpRecord r;
  r.module = m;
  r.kind = kind;
  r.label = label;
  r.out_shape = out.sizes().vec();
  r.macs = macs;
  r.thop_ops = thop;
  counter->records.push_back(std::move(r));
}

// weight: [C_out, C_in / groups, k...]: its numel / C_out is the work of one output element.
int64_t conv_macs(const torch::Tensor& weight, const torch::Tensor& out) {
  return out.numel() * (weight.numel() / weight.size(0));
}

// The inputs oneDNN's convolution is called on directly: float, on the CPU, channels-last.
bool direct_input(const torch::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat &&
         x.is_contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace

Conv2dImpl::Conv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups, bool bias)
    : torch::nn::Conv2dImpl(torch::nn::Conv2dOptions(in, out, kernel)
                                .stride(stride)
                                .padding(kernel / 2)
                                .groups(groups)
                                .bias(bias)),
      padding_{kernel / 2, kernel / 2} {}

bool Conv2dImpl::fusable(const torch::Tensor& x) const {
  return prepared_ && direct_ && fused_post_ops_enabled() && !models::active_counter() && direct_input(x);
}

torch::Tensor Conv2dImpl::forward_state_update(const torch::Tensor& x, const torch::Tensor& add,
                                               const torch::Tensor& scale, const torch::Tensor& shift) {
  if (fusable(x)) {
    ConvEpilogue e;
    e.sum_into = add;
    e.scale = scale;
    e.shift = shift;
    e.tanh = true;
    auto y = prepared_->run(x, e);
    if (y.defined()) return y;
  }
  const auto c = scale.numel();
  return forward(x).add_(add).mul_(scale.view({1, c, 1, 1})).add_(shift.view({1, c, 1, 1})).tanh_();
}

torch::Tensor Conv2dImpl::forward_fused(const torch::Tensor& x, bool relu, const torch::Tensor& add) {
  if (fusable(x)) {
    ConvEpilogue e;
    e.sum_into = add;
    e.relu = relu;
    auto y = prepared_->run(x, e);
    if (y.defined()) return y;
  }
  auto y = forward(x);  // the traced graph of export / int8 sees exactly these operations
  if (add.defined()) y.add_(add);
  return relu ? y.relu_() : y;
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) {
  torch::Tensor y;
  const auto& o = options;
  if (x.is_mkldnn()) {
    y = at::mkldnn_convolution(x, packed_.defined() ? packed_ : weight.contiguous(), bias, padding_,
                               *o.stride(), *o.dilation(), o.groups());
  } else if (direct_ && direct_input(x) && weight.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    if (prepared_) y = prepared_->run(x);
    if (!y.defined())
      y = at::mkldnn_convolution(x, weight, bias, padding_, *o.stride(), *o.dilation(), o.groups());
  } else {
    y = torch::nn::Conv2dImpl::forward(x);
  }
  if (models::active_counter()) {
    const int64_t macs = conv_macs(weight, y);
    report(this, "Conv2d", "", y, macs, macs + (options.bias() ? y.numel() : 0));
  }
  return y;
}

std::shared_ptr<Conv2dImpl> Conv2dImpl::folded(const BatchNorm2dImpl* bn, int64_t in_begin,
                                               int64_t in_end) const {
  torch::NoGradGuard no_grad;
  const auto& o = options;
  const bool split = in_end > in_begin;
  TORCH_CHECK(!split || o.groups() == 1, "cannot split the input of a grouped convolution");
  const int64_t in = split ? in_end - in_begin : o.in_channels();
  const bool with_bias = bn != nullptr || bias.defined();
  auto f = std::make_shared<Conv2dImpl>(in, o.out_channels(), (*o.kernel_size())[0], (*o.stride())[0],
                                        o.groups(), with_bias);
  auto w = weight.detach().to(torch::kDouble);
  if (split) w = w.slice(1, in_begin, in_end);
  torch::Tensor b = bias.defined() ? bias.detach().to(torch::kDouble) : torch::Tensor();
  if (bn != nullptr) {
    auto scale = bn->weight.detach().to(torch::kDouble) /
                 torch::sqrt(bn->running_var.detach().to(torch::kDouble) + bn->eps);
    auto shift = bn->bias.detach().to(torch::kDouble) - bn->running_mean.detach().to(torch::kDouble) * scale;
    w = w * scale.view({-1, 1, 1, 1});
    b = b.defined() ? b * scale + shift : shift;
  }
  f->weight.set_data(w.to(weight.scalar_type()).contiguous(weight.suggest_memory_format()));
  if (with_bias) f->bias.set_data(b.to(weight.scalar_type()));
  f->to(weight.device());
  f->eval();
  for (auto& p : f->parameters()) p.set_requires_grad(false);  // inference only (e.g. traced as constants)
  return f;
}

void Conv2dImpl::use_onednn(bool pack) {
  direct_ = at::hasMKLDNN();
  packed_ = torch::Tensor();
  prepared_.reset();
  if (!direct_) return;
  if (!pack) {  // prepared once where oneDNN's headers are there; the weights are copied now
    const auto& o = options;
    prepared_ = PreparedConv::create(weight, bias, {o.stride()->begin(), o.stride()->end()}, padding_,
                                     {o.dilation()->begin(), o.dilation()->end()}, o.groups());
    return;
  }
  TORCH_CHECK(weight.device().is_cpu() && weight.scalar_type() == torch::kFloat,
              "oneDNN weight packing needs a float CPU weight, got ", weight.scalar_type(), " on ",
              weight.device());
  packed_ = at::mkldnn_reorder_conv2d_weight(weight.detach().contiguous().to_mkldnn(), padding_,
                                             *options.stride(), *options.dilation(), options.groups());
}

torch::Tensor Conv1dImpl::forward(const torch::Tensor& x) {
  auto y = torch::nn::Conv1dImpl::forward(x);
  if (models::active_counter()) {
    const int64_t macs = conv_macs(weight, y);
    report(this, "Conv1d", "", y, macs, macs + (options.bias() ? y.numel() : 0));
  }
  return y;
}

BatchNorm2dImpl::BatchNorm2dImpl(int64_t c, double e, double m) : channels(c), eps(e), momentum(m) {
  reset();
}

void BatchNorm2dImpl::reset() {
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
  running_mean = register_buffer("running_mean", torch::zeros({channels}));
  running_var = register_buffer("running_var", torch::ones({channels}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
}

torch::Tensor BatchNorm2dImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == channels, "BatchNorm2d(", channels, ") got input ", x.sizes());
  if (folded) return x;
  if (is_training()) {
    torch::NoGradGuard ng;
    num_batches_tracked.add_(1);
  }
  // ATen's channels-last CPU kernels vectorise along channels: a channel count that fills no whole
  // vector (the RLA state's k = 12) falls to scalar code, several times slower than NCHW
  // (docs/performance.md, "Where RLA's time goes"). Such inputs run in NCHW and come back.
  const bool narrow_channels_last = x.is_cpu() && x.size(1) % 8 != 0 &&
                                    x.suggest_memory_format() == at::MemoryFormat::ChannelsLast &&
                                    !x.is_contiguous();
  auto y =
      torch::batch_norm(narrow_channels_last ? x.contiguous() : x, weight, bias, running_mean, running_var,
                        is_training(), momentum, eps, at::globalContext().userEnabledCuDNN());
  if (narrow_channels_last) y = y.contiguous(at::MemoryFormat::ChannelsLast);
  report(this, "BatchNorm2d", "", y, 0, 2 * x.numel());
  return y;
}

std::pair<torch::Tensor, torch::Tensor> BatchNorm2dImpl::affine() const {
  torch::NoGradGuard no_grad;
  auto s = weight.detach() / torch::sqrt(running_var.detach() + eps);
  auto shift = bias.detach() - running_mean.detach() * s;
  return {s.view({1, -1, 1, 1}).clone(), shift.view({1, -1, 1, 1}).clone()};
}

std::shared_ptr<Conv2dImpl> BatchNorm2dImpl::as_conv(bool with_shift) const {
  torch::NoGradGuard no_grad;
  auto [scale, shift] = affine();
  auto c = std::make_shared<Conv2dImpl>(channels, channels, 1, 1, channels, with_shift);
  c->weight.set_data(scale.reshape({channels, 1, 1, 1}).contiguous());
  if (with_shift) c->bias.set_data(shift.reshape({channels}).contiguous());
  c->eval();
  for (auto& p : c->parameters()) p.set_requires_grad(false);
  return c;
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  auto y = torch::nn::LinearImpl::forward(x);
  const int64_t cost = options.in_features() * y.numel();
  report(this, "Linear", "", y, cost, cost);
  return y;
}

Conv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups) {
  return Conv2d(in, out, kernel, stride, groups);
}

void fold_conv_bn(torch::nn::Module& owner, const std::string& name, Conv2d& conv, BatchNorm2d& bn) {
  conv = owner.replace_module(name, Conv2d(conv->folded(bn.get())));
  bn->folded = true;
}

BatchNorm2d make_bn(int64_t channels) {
  return BatchNorm2d(channels);
}

ConvBNActImpl::ConvBNActImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
                             bool relu6)
    : relu6_(relu6) {
  conv = register_module("0", make_conv(in, out, kernel, stride, groups));
  bn = register_module("1", make_bn(out));
}

void ConvBNActImpl::fold() {
  fold_conv_bn(*this, "0", conv, bn);
}

torch::Tensor ConvBNActImpl::forward(const torch::Tensor& x) {
  auto y = bn(conv(x));
  return relu6_ ? torch::hardtanh_(y, 0.0, 6.0) : y;
}

SEImpl::SEImpl(int64_t channels, int64_t reduction) {
  auto fc = register_module("fc", std::make_shared<torch::nn::Module>());
  fc1_ = Linear(torch::nn::LinearOptions(channels, channels / reduction).bias(false));
  fc2_ = Linear(torch::nn::LinearOptions(channels / reduction, channels).bias(false));
  // Python: Sequential(Linear, ReLU, Linear, Sigmoid) -> keys fc.0 and fc.2.
  fc->register_module("0", fc1_);
  fc->register_module("2", fc2_);
}

torch::Tensor SEImpl::forward(const torch::Tensor& x) {
  auto w = torch::sigmoid(fc2_(torch::relu(fc1_(global_avg_pool(x)))));
  return x * w.view({-1, x.size(1), 1, 1});
}

ECAImpl::ECAImpl(int64_t kernel) {
  conv_ = register_module(
      "conv", Conv1d(torch::nn::Conv1dOptions(1, 1, kernel).padding((kernel - 1) / 2).bias(false)));
}

torch::Tensor ECAImpl::forward(const torch::Tensor& x) {
  // [N, C] -> [N, 1, C]: the 1-D conv slides across channels.
  auto w = conv_(global_avg_pool(x).unsqueeze(1));
  return x * torch::sigmoid(w).view({-1, x.size(1), 1, 1});
}

torch::Tensor avg_pool_2x2(const torch::Tensor& x, const char* label) {
  auto y = torch::avg_pool2d(x, {2, 2}, {2, 2}, {0, 0}, /*ceil_mode=*/true);
  report(nullptr, "AvgPool2d", label, y, 0, y.numel());
  return y;
}

torch::Tensor global_avg_pool(const torch::Tensor& x, bool thop_counted) {
  auto y = x.mean({2, 3});
  report(nullptr, "AdaptiveAvgPool2d", "avgpool", y, 0,
         thop_counted ? (x.size(2) * x.size(3) + 1) * y.numel() : 0);
  return y;
}

namespace {

// MaxPool2d(3, 2, 1) on a channels-last float tensor without autograd: each output pixel is the
// elementwise max of the (up to) nine C-float rows of its window, a loop over the channels the
// compiler vectorizes. ATen's CPU max pooling computes the argmax indices for a backward even
// under no_grad (max_pool2d_with_indices): 8.0 ms against 6.0 for resnet50's stem at batch 32,
// steady state, 2 threads (docs/performance.md, round seven). A NaN in a window propagates, as
// in ATen's.
torch::Tensor max_pool_3x3s2_rows(const torch::Tensor& x) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t oh = (h + 2 - 3) / 2 + 1, ow = (w + 2 - 3) / 2 + 1;
  auto y = torch::empty({n, c, oh, ow}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* in = x.data_ptr<float>();
  float* out = y.data_ptr<float>();
  at::parallel_for(0, n * oh, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / oh, r = row % oh;
      const int64_t r0 = std::max<int64_t>(2 * r - 1, 0), r1 = std::min<int64_t>(2 * r + 2, h);
      for (int64_t col = 0; col < ow; ++col) {
        const int64_t c0 = std::max<int64_t>(2 * col - 1, 0), c1 = std::min<int64_t>(2 * col + 2, w);
        float* __restrict dst = out + ((b * oh + r) * ow + col) * c;
        std::copy_n(in + ((b * h + r0) * w + c0) * c, c, dst);
        for (int64_t i = r0; i < r1; ++i) {
          for (int64_t j = (i == r0 ? c0 + 1 : c0); j < c1; ++j) {
            const float* __restrict src = in + ((b * h + i) * w + j) * c;
            for (int64_t k = 0; k < c; ++k) dst[k] = src[k] > dst[k] || src[k] != src[k] ? src[k] : dst[k];
          }
        }
      }
    }
  });
  return y;
}

}  // namespace

torch::Tensor max_pool_3x3s2(const torch::Tensor& x) {
  const bool rows = x.layout() == torch::kStrided && x.dim() == 4 && x.device().is_cpu() &&
                    x.scalar_type() == torch::kFloat && x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
                    !(x.requires_grad() && torch::GradMode::is_enabled()) && x.size(2) > 0 && x.size(3) > 0;
  auto y = rows ? max_pool_3x3s2_rows(x) : torch::max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
  report(nullptr, "MaxPool2d", "maxpool", y, 0, 0);
  return y;
}

void init_conv_bn(torch::nn::Module& root) {
  torch::NoGradGuard no_grad;
  for (auto& m : root.modules(/*include_self=*/false)) {
    if (auto* conv = m->as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = m->as<BatchNorm2dImpl>()) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
    }
  }
}

}  // namespace rla::models
