#include "rla/inference/fast_inference.h"

#include "fast_parts.h"
#include "rla/models/mobilenet.h"
#include "rla/models/resnet.h"

namespace rla::inference {

namespace {
/// Reads Conv2dImpl's protected, resolved padding (a derived class may name the member).
struct PaddingPeek : torch::nn::Conv2dImpl {
  static const std::vector<int64_t>& of(const torch::nn::Conv2dImpl& c) {
    return c.*(&PaddingPeek::_reversed_padding_repeated_twice);
  }
};
}  // namespace

torch::Tensor FoldedConv::operator()(const torch::Tensor& x) const {
  if (x.is_mkldnn()) {
    return at::mkldnn_convolution(x, packed.defined() ? packed : weight.contiguous(), bias, padding, stride,
                                  dilation, groups);
  }
  // A channels-last float CPU input goes straight to oneDNN: at::conv2d's own choice sends small
  // inputs (under ~20k elements, e.g. batch-1 CIFAR stages) to a slower native kernel.
  if (at::hasMKLDNN() && x.device().is_cpu() && x.scalar_type() == torch::kFloat &&
      x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
      weight.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    return at::mkldnn_convolution(x, weight, bias, padding, stride, dilation, groups);
  }
  return at::conv2d(x, weight, bias, stride, padding, dilation, groups);
}

void FoldedConv::pack() {
  TORCH_CHECK(weight.device().is_cpu() && weight.scalar_type() == torch::kFloat,
              "fast inference: oneDNN packing needs a float CPU weight, got ", weight.scalar_type(), " on ",
              weight.device());
  packed =
      at::mkldnn_reorder_conv2d_weight(weight.contiguous().to_mkldnn(), padding, stride, dilation, groups);
}

FoldedConv fold_conv_bn(const models::Conv2dImpl& conv, const models::BatchNorm2dImpl* bn, bool channels_last,
                        int64_t in_begin, int64_t in_end) {
  torch::NoGradGuard no_grad;
  const auto& o = conv.options;
  TORCH_CHECK(torch::enumtype::get_enum_name(o.padding_mode()) == std::string("kZeros"),
              "fast inference: only zero padding is supported");
  // [left_w, right_w, top_h, bottom_h]; read from the module so that no variant type is named
  // (c10::variant in LibTorch 1.x, std::variant in 2.x).
  const auto& pad = PaddingPeek::of(conv);
  TORCH_CHECK(pad.size() == 4 && pad[0] == pad[1] && pad[2] == pad[3],
              "fast inference: asymmetric conv padding is not supported");
  FoldedConv f;
  f.stride = {o.stride()->at(0), o.stride()->at(1)};
  f.padding = {pad[2], pad[0]};
  f.dilation = {o.dilation()->at(0), o.dilation()->at(1)};
  f.groups = o.groups();
  auto w = conv.weight.detach().to(torch::kDouble);
  if (in_end > in_begin) {
    TORCH_CHECK(f.groups == 1, "fast inference: cannot split the input of a grouped conv");
    w = w.slice(1, in_begin, in_end);
  }
  torch::Tensor b = conv.bias.defined() ? conv.bias.detach().to(torch::kDouble) : torch::Tensor();
  if (bn != nullptr) {
    auto scale = bn->weight.detach().to(torch::kDouble) /
                 torch::sqrt(bn->running_var.detach().to(torch::kDouble) + bn->eps);
    auto shift = bn->bias.detach().to(torch::kDouble) - bn->running_mean.detach().to(torch::kDouble) * scale;
    w = w * scale.view({-1, 1, 1, 1});
    b = b.defined() ? b * scale + shift : shift;
  }
  const auto dtype = conv.weight.scalar_type();
  f.weight = w.to(dtype).contiguous();
  if (channels_last) f.weight = f.weight.contiguous(at::MemoryFormat::ChannelsLast);
  if (b.defined()) f.bias = b.to(dtype).contiguous();
  return f;
}

namespace detail {

ModuleMap module_map(const torch::nn::Module& net) {
  ModuleMap m;
  for (const auto& item : net.named_modules("", /*include_self=*/false)) m[item.key()] = item.value();
  return m;
}

Affine::Affine(const models::BatchNorm2dImpl* bn) {
  if (bn == nullptr) return;
  torch::NoGradGuard no_grad;
  auto s = bn->weight.detach() / torch::sqrt(bn->running_var.detach() + bn->eps);
  scale = s.view({1, -1, 1, 1}).clone();
  shift = (bn->bias.detach() - bn->running_mean.detach() * s).view({1, -1, 1, 1}).clone();
}

FoldedConv Affine::as_conv(bool with_shift) const {
  FoldedConv c;
  const int64_t k = scale.size(1);
  c.weight = scale.reshape({k, 1, 1, 1}).contiguous();
  if (with_shift) c.bias = shift.reshape({k}).contiguous();
  c.stride = {1, 1};
  c.padding = {0, 0};
  c.dilation = {1, 1};
  c.groups = k;
  return c;
}

FoldedConv slice_outputs(const FoldedConv& c, int64_t begin, int64_t end) {
  FoldedConv s = c;
  s.weight = c.weight.slice(0, begin, end).clone(at::MemoryFormat::Preserve);
  if (c.bias.defined()) s.bias = c.bias.slice(0, begin, end).clone();
  if (c.groups > 1) s.groups = end - begin;  // depthwise: one group per channel
  s.packed = torch::Tensor();
  return s;
}

torch::Tensor FastCell::update(const torch::Tensor& h, bool h_zero, const torch::Tensor& y) const {
  // oneDNN tensors neither broadcast nor concatenate: the h scale is a depthwise conv and the
  // concat conv runs as two convs whose outputs are added.
  const bool onednn = y.is_mkldnn();
  switch (kind) {
    case models::Aggregation::kRla: {
      auto u = out(y);
      if (!h_zero) onednn ? u.add_(h_scale_conv(h)) : u.addcmul_(h, h_scale);
      return (*recurrent)(u.tanh_());
    }
    case models::Aggregation::kSum:
      return h_zero ? out(y) : out(y).add_(h);
    case models::Aggregation::kConcat:
      if (!onednn) return out(torch::cat({y, h}, 1));
      return h_zero ? out_y(y) : out_y(y).add_(out_h(h));
  }
  TORCH_CHECK(false, "unreachable aggregation");
}

void FastCell::pack() {
  for (auto* c : {&out, &out_y, &out_h, &h_scale_conv})
    if (c->weight.defined()) c->pack();
  if (recurrent && !recurrent->packed.defined()) recurrent->pack();
}

FastCell make_cell(FastNetwork::Impl& impl, const ModuleMap& m, models::Aggregation kind, int64_t s,
                   int64_t b, const std::string& recurrent_name,
                   std::map<std::string, std::shared_ptr<FoldedConv>>& shared) {
  FastCell c;
  c.kind = kind;
  const std::string st = std::to_string(s);
  if (kind == models::Aggregation::kConcat) {
    auto conv = need<models::Conv2dImpl>(m, "concat_convs." + st);
    const int64_t in = conv->options.in_channels(), k = conv->options.out_channels();
    c.out = fold_conv_bn(*conv, nullptr, impl.channels_last);
    c.out_y = fold_conv_bn(*conv, nullptr, impl.channels_last, 0, in - k);
    c.out_h = fold_conv_bn(*conv, nullptr, impl.channels_last, in - k, in);
    c.out_h.bias = torch::Tensor();  // added once, by out_y
    return c;
  }
  auto conv_out = need<models::Conv2dImpl>(m, "conv_outs." + st);
  if (kind == models::Aggregation::kSum) {
    c.out = fold_conv_bn(*conv_out, nullptr, impl.channels_last);
    return c;
  }
  auto bn = need<models::BatchNorm2dImpl>(m, "stage_bns." + st + "." + std::to_string(b));
  c.out = fold_conv_bn(*conv_out, bn.get(), impl.channels_last);
  const Affine affine(bn.get());
  c.h_scale = affine.scale;
  c.h_scale_conv = affine.as_conv(/*with_shift=*/false);
  ++impl.folded;
  auto& rc = shared[recurrent_name];
  if (!rc) {
    rc = std::make_shared<FoldedConv>(
        fold_conv_bn(*need<models::Conv2dImpl>(m, recurrent_name), nullptr, impl.channels_last));
  }
  c.recurrent = rc;
  return c;
}

}  // namespace detail

namespace {

/// Any other family: the network's own forward in eval mode under InferenceMode.
struct EagerFallback : FastNetwork::Impl {
  models::Network net;
  explicit EagerFallback(models::Network n) : net(std::move(n)) {}
  std::string backend() const override { return "eager"; }
  torch::Tensor forward(const torch::Tensor& input) override {
    const bool was_training = net->is_training();
    net->eval();
    auto y = net->forward(input);
    if (was_training) net->train();
    return y;
  }
};

}  // namespace

FastNetwork::FastNetwork(models::Network net, FastOptions options) : options_(options) {
  TORCH_CHECK(net, "FastNetwork: null network");
  if (const auto* r = net->as<models::ResNetImpl>()) {
    impl_ = detail::make_fast_resnet(*r, options);
  } else if (const auto* mb = net->as<models::MobileNetV2Impl>()) {
    impl_ = detail::make_fast_mobilenet(*mb, options);
  } else {
    impl_ = std::make_shared<EagerFallback>(std::move(net));
  }
}

torch::Tensor FastNetwork::forward(const torch::Tensor& input) {
  c10::InferenceMode guard;
  return impl_->forward(input);
}

bool FastNetwork::specialized() const {
  return impl_->backend() != "eager";
}
std::string FastNetwork::backend() const {
  return impl_->backend();
}
int64_t FastNetwork::folded_batchnorms() const {
  return impl_->folded;
}

}  // namespace rla::inference
