#include "rla/models/backbone.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <stdexcept>

#include "rla/models/layers.h"
#include "rla/models/resnet.h"

namespace rla::models {
namespace {

constexpr int64_t kStem = -1, kHead = -2, kContainer = -3;

// Which part of a ResNet-family network a parameter or module belongs to, by its state_dict
// name: the stem (conv1, bn1), stage s (its blocks, state BNs, conv_out, recurrent_conv), the
// head (bn2, fc), or a container holding several stages ("stages" itself).
int64_t part_of(const std::string& name) {
  auto starts = [&name](const std::string& p) { return name.compare(0, p.size(), p) == 0; };
  auto index_after = [&name](size_t at) -> int64_t {
    size_t end = at;
    while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
    return end == at ? kContainer : std::stoll(name.substr(at, end - at));
  };
  if (starts("fc") || starts("bn2") || starts("head_bn_conv")) return kHead;
  for (const std::string prefix :
       {"stage_bns.", "stages.", "conv_outs.", "recurrent_convs.", "concat_convs."})
    if (starts(prefix)) return index_after(prefix.size());
  if (starts("stage_bns") || starts("stages") || starts("conv_outs") || starts("recurrent_convs") ||
      starts("concat_convs"))
    return kContainer;
  if (starts("layer")) {
    const auto i = index_after(5);
    return i == kContainer ? kContainer : i - 1;
  }
  return name.empty() ? kContainer : kStem;
}

int64_t num_stages(const NetworkImpl& net) {
  return net.blocks().empty() ? 0 : net.blocks().back().stage + 1;
}

bool frozen(int64_t part, int64_t frozen_stages) {
  return (part == kStem && frozen_stages >= 0) || (part >= 0 && part < frozen_stages);
}

// The state BatchNorm of the last block: its output (the final h) feeds nothing unless asked for.
std::string last_state_bn(const NetworkImpl& net) {
  const auto& blocks = net.blocks();
  int64_t in_last = 0;
  for (const auto& b : blocks) in_last += b.stage == blocks.back().stage ? 1 : 0;
  return fmt::format("stage_bns.{}.{}.", blocks.back().stage, in_last - 1);
}

}  // namespace

std::vector<torch::Tensor> forward_features(NetworkImpl& net, const torch::Tensor& input,
                                            const BackboneOptions& options) {
  auto dense = [](const torch::Tensor& t) { return t.is_mkldnn() ? t.to_dense() : t; };
  auto s = net.stem(input);
  const auto& blocks = net.blocks();
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < blocks.size(); ++i) {
    net.run_block(i, s);
    if (i + 1 == blocks.size() || blocks[i + 1].stage != blocks[i].stage) out.push_back(dense(s.x));
  }
  if (options.with_state() && net.state_channels() > 0) {
    TORCH_CHECK(s.h.defined(), "forward_features: the network has a state but none was computed");
    out.push_back(dense(s.h));
  }
  return out;
}

std::vector<std::string> feature_names(NetworkImpl& net, const std::vector<int64_t>& input_chw,
                                       const BackboneOptions& options) {
  TORCH_CHECK(input_chw.size() == 3, "feature_names: input [C, H, W] expected");
  torch::NoGradGuard no_grad;
  const bool training = net.is_training();
  net.eval();
  const auto params = net.parameters();
  auto x = torch::zeros({1, input_chw[0], input_chw[1], input_chw[2]},
                        params.empty() ? torch::TensorOptions() : params.front().options());
  const auto features = forward_features(net, x, options);
  net.train(training);
  std::vector<std::string> names;
  const size_t stages = features.size() - (options.with_state() && net.state_channels() > 0 ? 1 : 0);
  for (size_t i = 0; i < stages; ++i) {
    const double stride = static_cast<double>(input_chw[1]) / static_cast<double>(features[i].size(2));
    names.push_back(fmt::format("C{}", std::lround(std::log2(stride))));
  }
  if (stages < features.size()) names.push_back("h");
  return names;
}

bool is_resnet_family(const NetworkImpl& net) {
  return dynamic_cast<const ResNetImpl*>(&net) != nullptr;
}

void freeze_backbone(NetworkImpl& net, const BackboneOptions& options) {
  if (!is_resnet_family(net))
    throw std::invalid_argument("frozen stages are defined for ResNet-family backbones only");
  const int64_t stages = num_stages(net);
  if (options.frozen_stages() < -1 || options.frozen_stages() > stages)
    throw std::invalid_argument(fmt::format("frozen_stages {} is outside -1..{} (the stem, then {} stages)",
                                            options.frozen_stages(), stages, stages));
  const std::string unused = net.state_channels() > 0 && !options.with_state() ? last_state_bn(net) : "";
  for (auto& p : net.named_parameters()) {
    const bool off = frozen(part_of(p.key()), options.frozen_stages()) ||
                     (!unused.empty() && p.key().compare(0, unused.size(), unused) == 0);
    if (off) p.value().set_requires_grad(false);
  }
  set_backbone_training(net, net.is_training(), options);
}

void set_backbone_training(NetworkImpl& net, bool training, const BackboneOptions& options) {
  net.train(training);
  if (!training) return;
  for (const auto& m : net.named_modules("", /*include_self=*/false)) {
    if (frozen(part_of(m.key()), options.frozen_stages())) m.value()->eval();
    if (options.norm_eval() && dynamic_cast<BatchNorm2dImpl*>(m.value().get()) != nullptr) m.value()->eval();
  }
}

}  // namespace rla::models
