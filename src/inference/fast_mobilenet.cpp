// The fast forward of the MobileNetV2 family (plain, RLA, dsRLA, ECA): BN folded into every
// conv, channels-last. (oneDNN tensors have no ReLU6, so this family stays on dense tensors.)
#include "fast_parts.h"
#include "rla/models/mobilenet.h"

namespace rla::inference::detail {

namespace {

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

  FastMobileNet(const models::MobileNetV2Impl& net, const FastOptions& opt) {
    channels_last = opt.channels_last();
    split = opt.split_concat();
    const bool cl = channels_last;
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
    torch::Tensor h = zero_state(x, k);
    bool h_zero = h.defined();
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
    return at::linear(last(x).clamp_(0, 6).mean({2, 3}), fc->weight, fc->bias);
  }
};

}  // namespace

std::shared_ptr<FastNetwork::Impl> make_fast_mobilenet(const models::MobileNetV2Impl& net,
                                                       const FastOptions& o) {
  return std::make_shared<FastMobileNet>(net, o);
}

}  // namespace rla::inference::detail
