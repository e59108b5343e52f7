// The fast forward of the ResNet family (plain, RLA, ResNeXt, SE, ECA, `_s`, all aggregations):
// BN folded into every conv; on CPU, oneDNN blocked activations with pre-packed weights.
#include "fast_parts.h"
#include "rla/models/resnet.h"

namespace rla::inference::detail {

namespace {

struct ResBlockFast {
  FoldedConv conv1, conv1_x, conv1_h, conv2, conv3, down;
  bool bottleneck = false, has_down = false, pools = false, from_output = true;
  models::SE se{nullptr};
  models::ECA eca{nullptr};
  FastCell cell;

  void pack() {
    for (auto* c : {&conv1, &conv1_x, &conv1_h, &conv2, &conv3, &down})
      if (c->weight.defined()) c->pack();
    cell.pack();
  }
};

torch::Tensor pool_state(const torch::Tensor& h) {
  return at::avg_pool2d(h, {2, 2}, {2, 2}, {0, 0}, /*ceil_mode=*/true);
}

struct FastResNet : FastNetwork::Impl {
  bool cifar_stem = false;
  int64_t k = 0;
  bool onednn = false;  ///< packed weights exist: float CPU inputs take forward_onednn
  FoldedConv stem;
  std::vector<ResBlockFast> blocks;
  Affine head_bn;
  FoldedConv head_conv;  ///< head_bn as a depthwise conv (oneDNN)
  std::shared_ptr<torch::nn::LinearImpl> fc;

  FastResNet(const models::ResNetImpl& net, const FastOptions& opt) {
    channels_last = opt.channels_last();
    split = opt.split_concat();
    const bool cl = channels_last;
    const auto& o = net.options();
    const auto m = module_map(net);
    cifar_stem = o.cifar_stem();
    k = o.rla_channels();
    stem = fold_conv_bn(*need<models::Conv2dImpl>(m, "conv1"), need<models::BatchNorm2dImpl>(m, "bn1").get(),
                        cl);
    folded = 1;
    std::map<std::string, std::shared_ptr<FoldedConv>> shared;
    int64_t in_stage = 0, prev_stage = -1;
    bool attention = false;
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
      attention = attention || f.se || f.eca;
      f.pools = blk->pools_state();
      f.from_output = o.state_input() == models::StateInput::kOutput;
      if (k > 0) {
        f.cell = make_cell(*this, m, o.aggregation(), info.stage, in_stage,
                           "recurrent_convs." + std::to_string(info.stage), shared);
      }
      blocks.push_back(std::move(f));
    }
    if (k > 0) {
      head_bn = Affine(need<models::BatchNorm2dImpl>(m, "bn2").get());
      head_conv = head_bn.as_conv(/*with_shift=*/true);
    }
    fc = need<torch::nn::LinearImpl>(m, "fc");
    // SE / ECA broadcast over oneDNN tensors, which they cannot: those nets stay on the plain
    // path, as do weights that are not float on the CPU.
    TORCH_CHECK(opt.backend() == "auto" || opt.backend() == "mkldnn" || opt.backend() == "dense",
                "fast inference: backend must be auto, mkldnn or dense, got '", opt.backend(), "'");
    const bool wanted = opt.backend() == "mkldnn" || (opt.backend() == "auto" && !cifar_stem);
    onednn = wanted && at::hasMKLDNN() && !attention && stem.weight.device().is_cpu() &&
             stem.weight.scalar_type() == torch::kFloat;
    if (onednn) {
      stem.pack();
      for (auto& b : blocks) b.pack();
      if (head_conv.weight.defined()) head_conv.pack();
    }
  }

  std::string backend() const override { return onednn ? "mkldnn" : FastNetwork::Impl::backend(); }

  torch::Tensor forward(const torch::Tensor& input) override {
    if (onednn && input.device().is_cpu() && input.scalar_type() == torch::kFloat)
      return forward_onednn(input);
    auto x = stem(format(input)).relu_();
    if (!cifar_stem) x = at::max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
    torch::Tensor h = zero_state(x, k);
    bool h_zero = h.defined();
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
        if (b.pools) h = pool_state(h);
        h = b.cell.update(h, h_zero, b.from_output ? result : out);
        h_zero = false;
      }
      x = result;
    }
    auto pooled = x.mean({2, 3});
    if (h.defined()) pooled = torch::cat({pooled, head_bn(h).relu_().mean({2, 3})}, 1);
    return at::linear(pooled, fc->weight, fc->bias);
  }

  /// The same computation on oneDNN tensors: one reorder in, pooled features out. The zero
  /// initial state is never materialised (its terms are skipped until the first update).
  torch::Tensor forward_onednn(const torch::Tensor& input) {
    auto x = stem(input.contiguous().to_mkldnn()).relu_();
    if (!cifar_stem) x = at::max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
    torch::Tensor h;  // undefined: all zeros
    for (auto& b : blocks) {
      auto out = k == 0 ? b.conv1(x) : (h.defined() ? b.conv1_x(x).add_(b.conv1_h(h)) : b.conv1_x(x));
      out.relu_();
      out = b.bottleneck ? b.conv3(b.conv2(out).relu_()) : b.conv2(out);
      const auto identity = b.has_down ? b.down(x) : x;
      auto result = b.from_output ? out.add_(identity).relu_() : at::add(out, identity).relu_();
      if (k > 0) {
        if (h.defined() && b.pools) h = pool_state(h);
        h = b.cell.update(h, !h.defined(), b.from_output ? result : out);
      }
      x = result;
    }
    auto pooled = at::adaptive_avg_pool2d(x, {1, 1}).to_dense().flatten(1);
    if (k > 0) {
      auto state = at::adaptive_avg_pool2d(head_conv(h).relu_(), {1, 1}).to_dense().flatten(1);
      pooled = torch::cat({pooled, state}, 1);
    }
    return at::linear(pooled, fc->weight, fc->bias);
  }
};

}  // namespace

std::shared_ptr<FastNetwork::Impl> make_fast_resnet(const models::ResNetImpl& net, const FastOptions& o) {
  return std::make_shared<FastResNet>(net, o);
}

}  // namespace rla::inference::detail
