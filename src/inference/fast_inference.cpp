#include "rla/inference/fast_inference.h"

#include <map>

#include "rla/models/mobilenet.h"
#include "rla/models/resnet.h"
#include "rla/models/rla_cell.h"

namespace rla::inference {

struct FastNetwork::Impl {
  virtual ~Impl() = default;
  virtual torch::Tensor forward(const torch::Tensor& input) = 0;
  virtual bool specialized() const { return true; }
  int64_t folded = 0;
  bool channels_last = true;
  bool split = false;

  torch::Tensor format(const torch::Tensor& x) const {
    return channels_last ? x.contiguous(at::MemoryFormat::ChannelsLast) : x.contiguous();
  }
};

namespace {
/// Reads Conv2dImpl's protected, resolved padding (a derived class may name the member).
struct PaddingPeek : torch::nn::Conv2dImpl {
  static const std::vector<int64_t>& of(const torch::nn::Conv2dImpl& c) {
    return c.*(&PaddingPeek::_reversed_padding_repeated_twice);
  }
};
}  // namespace

torch::Tensor FoldedConv::operator()(const torch::Tensor& x) const {
  return at::conv2d(x, weight, bias, stride, padding, dilation, groups);
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

namespace {

using ModuleMap = std::map<std::string, std::shared_ptr<torch::nn::Module>>;

ModuleMap module_map(const torch::nn::Module& net) {
  ModuleMap m;
  for (const auto& item : net.named_modules("", /*include_self=*/false)) m[item.key()] = item.value();
  return m;
}

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
  explicit Affine(const models::BatchNorm2dImpl* bn = nullptr) {
    if (bn == nullptr) return;
    torch::NoGradGuard no_grad;
    auto s = bn->weight.detach() / torch::sqrt(bn->running_var.detach() + bn->eps);
    scale = s.view({1, -1, 1, 1}).clone();
    shift = (bn->bias.detach() - bn->running_mean.detach() * s).view({1, -1, 1, 1}).clone();
  }
  torch::Tensor operator()(const torch::Tensor& x) const { return torch::addcmul(shift, x, scale); }
};

FoldedConv slice_outputs(const FoldedConv& c, int64_t begin, int64_t end) {
  FoldedConv s = c;
  s.weight = c.weight.slice(0, begin, end).clone(at::MemoryFormat::Preserve);
  if (c.bias.defined()) s.bias = c.bias.slice(0, begin, end).clone();
  if (c.groups > 1) s.groups = end - begin;  // depthwise: one group per channel
  return s;
}

/// The RLA state update of one block (rla_cell.cpp `aggregate`), with the kRla cell's BN folded:
/// bn(h + conv_out(y)) = (s * W) y + shift + s * h, so conv_out absorbs the BN and h is scaled
/// by s in one fused multiply-add.
struct FastCell {
  models::Aggregation kind = models::Aggregation::kRla;
  FoldedConv out;                         ///< conv_out (bn folded) or concat_conv
  torch::Tensor h_scale;                  ///< [1, k, 1, 1] (kRla)
  std::shared_ptr<FoldedConv> recurrent;  ///< shared by the blocks of a stage

  torch::Tensor update(const torch::Tensor& h, bool h_zero, const torch::Tensor& y) const {
    switch (kind) {
      case models::Aggregation::kRla: {
        auto u = out(y);
        if (!h_zero) u.addcmul_(h, h_scale);
        return (*recurrent)(u.tanh_());
      }
      case models::Aggregation::kSum:
        return h_zero ? out(y) : out(y).add_(h);
      case models::Aggregation::kConcat:
        return out(torch::cat({y, h}, 1));
    }
    TORCH_CHECK(false, "unreachable aggregation");
  }
};

/// Builds the cell of block `b` of stage `s` from the official names.
FastCell make_cell(FastNetwork::Impl& impl, const ModuleMap& m, models::Aggregation kind, int64_t s,
                   int64_t b, const std::string& recurrent_name,
                   std::map<std::string, std::shared_ptr<FoldedConv>>& shared) {
  FastCell c;
  c.kind = kind;
  const std::string st = std::to_string(s);
  if (kind == models::Aggregation::kConcat) {
    c.out = fold_conv_bn(*need<models::Conv2dImpl>(m, "concat_convs." + st), nullptr, impl.channels_last);
    return c;
  }
  auto conv_out = need<models::Conv2dImpl>(m, "conv_outs." + st);
  if (kind == models::Aggregation::kSum) {
    c.out = fold_conv_bn(*conv_out, nullptr, impl.channels_last);
    return c;
  }
  auto bn = need<models::BatchNorm2dImpl>(m, "stage_bns." + st + "." + std::to_string(b));
  c.out = fold_conv_bn(*conv_out, bn.get(), impl.channels_last);
  c.h_scale = Affine(bn.get()).scale;
  ++impl.folded;
  auto& rc = shared[recurrent_name];
  if (!rc) {
    rc = std::make_shared<FoldedConv>(
        fold_conv_bn(*need<models::Conv2dImpl>(m, recurrent_name), nullptr, impl.channels_last));
  }
  c.recurrent = rc;
  return c;
}

torch::Tensor classify(const torch::Tensor& x, const torch::nn::LinearImpl& fc) {
  return at::linear(x, fc.weight, fc.bias);
}

// ---- ResNet family ---------------------------------------------------------------------------

struct ResBlockFast {
  FoldedConv conv1, conv1_x, conv1_h, conv2, conv3, down;
  bool bottleneck = false, has_down = false, pools = false, from_output = true;
  models::SE se{nullptr};
  models::ECA eca{nullptr};
  FastCell cell;
};

struct FastResNet : FastNetwork::Impl {
  bool cifar_stem = false;
  int64_t k = 0;
  FoldedConv stem;
  std::vector<ResBlockFast> blocks;
  Affine head_bn;
  std::shared_ptr<torch::nn::LinearImpl> fc;

  FastResNet(const models::ResNetImpl& net, bool cl, bool split_concat) {
    channels_last = cl;
    split = split_concat;
    const auto& o = net.options();
    const auto m = module_map(net);
    cifar_stem = o.cifar_stem();
    k = o.rla_channels();
    stem = fold_conv_bn(*need<models::Conv2dImpl>(m, "conv1"), need<models::BatchNorm2dImpl>(m, "bn1").get(),
                        cl);
    folded = 1;
    std::map<std::string, std::shared_ptr<FoldedConv>> shared;
    int64_t in_stage = 0, prev_stage = -1;
    for (const auto& info : net.blocks()) {
      in_stage = info.stage == prev_stage ? in_stage + 1 : 0;
      prev_stage = info.stage;
      auto blk = need<models::ResBlockImpl>(m, info.name);
      ResBlockFast f;
      f.bottleneck = static_cast<bool>(blk->conv3);
      f.conv1 = fold_conv_bn(*blk->conv1, blk->bn1.get(), cl);
      if (k > 0) {
        const int64_t in_x = blk->conv1->options.in_channels() - k;
        f.conv1_x = fold_conv_bn(*blk->conv1, blk->bn1.get(), cl, 0, in_x);
        f.conv1_h = fold_conv_bn(*blk->conv1, blk->bn1.get(), cl, in_x, in_x + k);
        f.conv1_h.bias = torch::Tensor();  // the bias is added once, by conv1_x
      }
      f.conv2 = fold_conv_bn(*blk->conv2, blk->bn2.get(), cl);
      folded += 2;
      if (f.bottleneck) f.conv3 = fold_conv_bn(*blk->conv3, blk->bn3.get(), cl), ++folded;
      if (blk->downsample) {
        f.has_down = true;
        f.down = fold_conv_bn(*blk->downsample->conv, blk->downsample->bn.get(), cl);
        ++folded;
      }
      f.se = blk->se;
      f.eca = blk->eca;
      f.pools = blk->pools_state();
      f.from_output = o.state_from_output();
      if (k > 0) {
        f.cell = make_cell(*this, m, o.aggregation(), info.stage, in_stage,
                           "recurrent_convs." + std::to_string(info.stage), shared);
      }
      blocks.push_back(std::move(f));
    }
    if (k > 0) head_bn = Affine(need<models::BatchNorm2dImpl>(m, "bn2").get());
    fc = need<torch::nn::LinearImpl>(m, "fc");
  }

  torch::Tensor forward(const torch::Tensor& input) override {
    auto x = stem(format(input)).relu_();
    if (!cifar_stem) x = at::max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
    torch::Tensor h;
    bool h_zero = false;
    if (k > 0) {
      h = format(torch::zeros({x.size(0), k, x.size(2), x.size(3)}, x.options()));
      h_zero = true;
    }
    for (auto& b : blocks) {
      torch::Tensor out;
      if (!h.defined()) {
        out = b.conv1(x);
      } else if (h_zero) {
        out = b.conv1_x(x);  // the h part of conv1 sees only zeros
      } else if (split) {
        out = b.conv1_x(x).add_(b.conv1_h(h));
      } else {
        out = b.conv1(torch::cat({x, h}, 1));
      }
      out.relu_();
      if (b.bottleneck) {
        out = b.conv3(b.conv2(out).relu_());
      } else {
        out = b.conv2(out);
      }
      if (b.se) out = b.se->forward(out);
      if (b.eca) out = b.eca->forward(out);
      const auto identity = b.has_down ? b.down(x) : x;
      auto result = b.from_output ? out.add_(identity).relu_() : torch::add(out, identity).relu_();
      if (h.defined()) {
        if (b.pools) h = at::avg_pool2d(h, {2, 2}, {2, 2}, {0, 0}, /*ceil_mode=*/true);
        h = b.cell.update(h, h_zero, b.from_output ? result : out);
        h_zero = false;
      }
      x = result;
    }
    auto pooled = x.mean({2, 3});
    if (h.defined()) pooled = torch::cat({pooled, head_bn(h).relu_().mean({2, 3})}, 1);
    return classify(pooled, *fc);
  }
};

// ---- MobileNetV2 family ----------------------------------------------------------------------

struct MbBlockFast {
  bool has_expand = false, pools = false;
  FoldedConv expand, dw, dw_x, dw_h, project, project_x, project_h;
  models::ECA eca{nullptr};
  FastCell cell;
};

struct FastMobileNet : FastNetwork::Impl {
  int64_t k = 0;
  FoldedConv stem, last;
  std::vector<MbBlockFast> blocks;
  Affine head_bn;
  std::shared_ptr<torch::nn::LinearImpl> fc;

  static FoldedConv fold(const models::ConvBNActImpl& c, bool cl) {
    return fold_conv_bn(*c.conv, c.bn.get(), cl);
  }

  FastMobileNet(const models::MobileNetV2Impl& net, bool cl, bool split_concat) {
    channels_last = cl;
    split = split_concat;
    const auto m = module_map(net);
    k = net.state_channels();
    const bool rla = k > 0;
    stem = fold(*need<models::ConvBNActImpl>(m, rla ? "conv1" : "features.0"), cl);
    last = fold(*need<models::ConvBNActImpl>(
                    m, rla ? "conv2" : "features." + std::to_string(net.blocks().size() + 1)),
                cl);
    folded = 2;
    const auto kind = m.count("stage_bns")      ? models::Aggregation::kRla
                      : m.count("concat_convs") ? models::Aggregation::kConcat
                                                : models::Aggregation::kSum;
    const std::string recurrent = m.count("recurrent_dsconvs") ? "recurrent_dsconvs.0" : "recurrent_convs.0";
    std::map<std::string, std::shared_ptr<FoldedConv>> shared;
    int64_t in_row = 0, prev_row = -1;
    for (const auto& info : net.blocks()) {
      in_row = info.stage == prev_row ? in_row + 1 : 0;
      prev_row = info.stage;
      const std::string n = info.name;
      MbBlockFast f;
      const bool plain_expand = !rla && m.count(n + ".conv.3");
      auto expand = rla ? find<models::ConvBNActImpl>(m, n + ".conv1x1")
                        : (plain_expand ? need<models::ConvBNActImpl>(m, n + ".conv.0") : nullptr);
      const int off = plain_expand ? 1 : 0;
      auto dw = need<models::ConvBNActImpl>(m, n + ".conv." + std::to_string(off));
      auto proj = need<models::Conv2dImpl>(m, n + ".conv." + std::to_string(off + 1));
      auto proj_bn = need<models::BatchNorm2dImpl>(m, n + ".conv." + std::to_string(off + 2));
      if (expand) f.has_expand = true, f.expand = fold(*expand, cl), ++folded;
      f.dw = fold(*dw, cl);
      f.project = fold_conv_bn(*proj, proj_bn.get(), cl);
      folded += 2;
      f.pools = f.dw.stride[0] != 1;
      if (rla) {
        const int64_t hidden = dw->conv->options.in_channels() - k;
        f.dw_x = slice_outputs(f.dw, 0, hidden);
        f.dw_h = slice_outputs(f.dw, hidden, hidden + k);
        f.project_x = fold_conv_bn(*proj, proj_bn.get(), cl, 0, hidden);
        f.project_h = fold_conv_bn(*proj, proj_bn.get(), cl, hidden, hidden + k);
        f.project_h.bias = torch::Tensor();
        f.cell = make_cell(*this, m, kind, info.stage, in_row, recurrent, shared);
      }
      f.eca = find<models::ECAImpl>(m, n + ".eca") ? models::ECA(find<models::ECAImpl>(m, n + ".eca"))
                                                   : models::ECA(nullptr);
      blocks.push_back(std::move(f));
    }
    if (rla) head_bn = Affine(need<models::BatchNorm2dImpl>(m, "bn2").get());
    fc = need<torch::nn::LinearImpl>(m, "classifier.1");
  }

  torch::Tensor forward(const torch::Tensor& input) override {
    auto x = stem(format(input)).clamp_(0, 6);
    torch::Tensor h;
    bool h_zero = false;
    if (k > 0) {
      h = format(torch::zeros({x.size(0), k, x.size(2), x.size(3)}, x.options()));
      h_zero = true;
    }
    for (auto& b : blocks) {
      auto z = b.has_expand ? b.expand(x).clamp_(0, 6) : x;
      torch::Tensor y;
      if (!h.defined()) {
        y = b.project(b.dw(z).clamp_(0, 6));
      } else if (split) {  // depthwise: the x and h channels never mix before the projection
        y = b.project_x(b.dw_x(z).clamp_(0, 6)).add_(b.project_h(b.dw_h(h).clamp_(0, 6)));
      } else {
        y = b.project(b.dw(torch::cat({z, h}, 1)).clamp_(0, 6));
      }
      if (b.eca) y = b.eca->forward(y);
      auto out = (!b.pools && x.size(1) == y.size(1)) ? torch::add(x, y) : y;
      if (h.defined()) {
        if (b.pools) h = at::avg_pool2d(h, {2, 2}, {2, 2}, {0, 0}, /*ceil_mode=*/true);
        h = b.cell.update(h, h_zero, y);
        h_zero = false;
      }
      x = out;
    }
    if (h.defined()) x = torch::cat({x, head_bn(h).clamp_(0, 6)}, 1);
    return classify(last(x).clamp_(0, 6).mean({2, 3}), *fc);
  }
};

// ---- any other family ------------------------------------------------------------------------

struct EagerFallback : FastNetwork::Impl {
  models::Network net;
  explicit EagerFallback(models::Network n) : net(std::move(n)) {}
  bool specialized() const override { return false; }
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
    impl_ = std::make_shared<FastResNet>(*r, options.channels_last(), options.split_concat());
  } else if (const auto* mb = net->as<models::MobileNetV2Impl>()) {
    impl_ = std::make_shared<FastMobileNet>(*mb, options.channels_last(), options.split_concat());
  } else {
    impl_ = std::make_shared<EagerFallback>(std::move(net));
  }
}

torch::Tensor FastNetwork::forward(const torch::Tensor& input) {
  c10::InferenceMode guard;
  return impl_->forward(input);
}

bool FastNetwork::specialized() const {
  return impl_->specialized();
}
int64_t FastNetwork::folded_batchnorms() const {
  return impl_->folded;
}

}  // namespace rla::inference
