#include "rla/models/layers.h"

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

}  // namespace

torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) {
  auto y = torch::nn::Conv2dImpl::forward(x);
  if (models::active_counter()) {
    const int64_t macs = conv_macs(weight, y);
    report(this, "Conv2d", "", y, macs, macs + (options.bias() ? y.numel() : 0));
  }
  return y;
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
  if (is_training()) {
    torch::NoGradGuard ng;
    num_batches_tracked.add_(1);
  }
  auto y = torch::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum, eps,
                             at::globalContext().userEnabledCuDNN());
  report(this, "BatchNorm2d", "", y, 0, 2 * x.numel());
  return y;
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  auto y = torch::nn::LinearImpl::forward(x);
  const int64_t cost = options.in_features() * y.numel();
  report(this, "Linear", "", y, cost, cost);
  return y;
}

Conv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups) {
  return Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                    .stride(stride)
                    .padding(kernel / 2)
                    .groups(groups)
                    .bias(false));
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
  return x * w.view({x.size(0), x.size(1), 1, 1});
}

ECAImpl::ECAImpl(int64_t kernel) {
  conv_ = register_module(
      "conv", Conv1d(torch::nn::Conv1dOptions(1, 1, kernel).padding((kernel - 1) / 2).bias(false)));
}

torch::Tensor ECAImpl::forward(const torch::Tensor& x) {
  // [N, C] -> [N, 1, C]: the 1-D conv slides across channels.
  auto w = conv_(global_avg_pool(x).unsqueeze(1));
  return x * torch::sigmoid(w).view({x.size(0), x.size(1), 1, 1});
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

torch::Tensor max_pool_3x3s2(const torch::Tensor& x) {
  auto y = torch::max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
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
