#include "rla/models/exit_heads.h"

#include <nlohmann/json.hpp>

#include "rla/util/json_fields.h"

namespace rla::models {
namespace {

constexpr util::EnumNames<ExitPlacement, 2> kPlacementNames{
    "exits", {{{ExitPlacement::kBlock, "block"}, {ExitPlacement::kStage, "stage"}}}};
constexpr util::EnumNames<ExitInput, 3> kInputNames{
    "exit_input", {{{ExitInput::kBoth, "both"}, {ExitInput::kMain, "main"}, {ExitInput::kState, "state"}}}};

}  // namespace

ExitPlacement parse_exit_placement(const std::string& s) {
  return kPlacementNames.parse(s);
}

std::string to_string(ExitPlacement p) {
  return kPlacementNames.name(p);
}

void to_json(nlohmann::json& j, ExitPlacement p) {
  j = to_string(p);
}

void from_json(const nlohmann::json& j, ExitPlacement& p) {
  p = parse_exit_placement(j.get<std::string>());
}

ExitInput parse_exit_input(const std::string& s) {
  return kInputNames.parse(s);
}

std::string to_string(ExitInput e) {
  return kInputNames.name(e);
}

void to_json(nlohmann::json& j, ExitInput e) {
  j = to_string(e);
}

void from_json(const nlohmann::json& j, ExitInput& e) {
  const auto name = j.get<std::string>();
  e = name.empty() ? ExitInput::kBoth : parse_exit_input(name);
}

ExitHeadsImpl::ExitHeadsImpl(const NetworkImpl& net, int64_t num_classes, ExitPlacement placement,
                             ExitInput input, int64_t projection)
    : input_(input), projection_(projection) {
  TORCH_CHECK(projection >= 0, "exit heads: projection width must be >= 0, got ", projection);
  const auto& blocks = net.blocks();
  TORCH_CHECK(input != ExitInput::kState || net.state_channels() > 0,
              "exits reading the state alone need an RLA net (this one has no state)");
  TORCH_CHECK(blocks.size() >= 2, "exits need a backbone of at least two blocks");
  for (size_t i = 0; i + 1 < blocks.size(); ++i) {
    const bool stage_end = blocks[i + 1].stage != blocks[i].stage;
    if (placement == ExitPlacement::kBlock || stage_end) after_block_.push_back(i);
  }
  auto heads = register_module("heads", torch::nn::ModuleList());
  for (size_t j = 0; j < after_block_.size(); ++j) {
    const auto& b = blocks[after_block_[j]];
    auto head = std::make_shared<torch::nn::Module>();
    const bool reads_x = input != ExitInput::kState, reads_h = input != ExitInput::kMain && b.h_channels > 0;
    BatchNorm2d bn{nullptr};
    if (reads_h) bn = head->register_module("bn", make_bn(b.h_channels));
    const int64_t features = (reads_x ? b.x_channels : 0) + (reads_h ? b.h_channels : 0);
    Conv2d proj{nullptr};
    BatchNorm2d proj_bn{nullptr};
    if (projection > 0) {
      proj = head->register_module("proj", make_conv(features, projection, 1));
      proj_bn = head->register_module("proj_bn", make_bn(projection));
    }
    auto fc = head->register_module("fc", Linear(projection > 0 ? projection : features, num_classes));
    heads->push_back(head);
    bns_.push_back(bn);
    projs_.push_back(proj);
    proj_bns_.push_back(proj_bn);
    fcs_.push_back(fc);
  }
}

torch::Tensor ExitHeadsImpl::forward(size_t j, const FlowState& s) {
  torch::Tensor features = s.x;
  if (bns_.at(j)) {
    auto state = torch::relu(bns_[j](s.h));
    features = input_ == ExitInput::kState ? state : torch::cat({s.x, state}, 1);
  }
  if (projs_.at(j)) features = torch::relu(proj_bns_[j](projs_[j](features)));
  return fcs_.at(j)(global_avg_pool(features));
}

std::vector<torch::Tensor> forward_all_exits(NetworkImpl& net, ExitHeadsImpl& heads,
                                             const torch::Tensor& input) {
  std::vector<torch::Tensor> out;
  auto s = net.stem(input);
  size_t j = 0;
  for (size_t i = 0; i < net.blocks().size(); ++i) {
    net.run_block(i, s);
    if (j < heads.size() && heads.after_block()[j] == i) out.push_back(heads.forward(j++, s));
  }
  out.push_back(net.head(s));
  return out;
}

std::pair<torch::Tensor, torch::Tensor> exit_loss(NetworkImpl& net, ExitHeadsImpl& heads,
                                                  const torch::Tensor& input, const torch::Tensor& labels,
                                                  double weight) {
  auto all = forward_all_exits(net, heads, input);
  torch::Tensor exits = torch::zeros({}, all.back().options());
  for (size_t j = 0; j + 1 < all.size(); ++j)
    exits = exits + torch::nn::functional::cross_entropy(all[j], labels);
  exits = exits / static_cast<double>(std::max<size_t>(1, all.size() - 1));
  if (weight < 0) return {all.back(), exits};
  return {all.back(), torch::nn::functional::cross_entropy(all.back(), labels) + weight * exits};
}

}  // namespace rla::models
