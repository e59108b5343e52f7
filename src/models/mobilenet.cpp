#include "rla/models/mobilenet.h"

#include <fmt/format.h>

namespace rla::models {
namespace {

struct Row {
  int64_t t, c, n, s;  // expansion, output channels, repeats, first stride
};
const std::vector<Row> kSetting = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                   {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
constexpr int64_t kStemWidth = 32;
constexpr int64_t kLastWidth = 1280;

}  // namespace

InvertedResidualImpl::InvertedResidualImpl(int64_t inp, int64_t oup, int64_t stride, int64_t t, int64_t k,
                                           int64_t eca_kernel)
    : stride_(stride), use_res_(stride == 1 && inp == oup) {
  const int64_t hidden = inp * t;
  const int64_t dw = hidden + k;
  if (k > 0) {
    if (t != 1) expand_ = register_module("conv1x1", ConvBNAct(inp, hidden, 1, 1, 1, true));
    conv_ = register_module("conv", std::make_shared<torch::nn::Module>());
    depthwise_ = conv_->register_module("0", ConvBNAct(dw, dw, 3, stride, dw, true));
    project_name_ = "1";
    project_ = conv_->register_module(project_name_, make_conv(dw, oup, 1));
    project_bn_ = conv_->register_module("2", make_bn(oup));
  } else {
    conv_ = register_module("conv", std::make_shared<torch::nn::Module>());
    int idx = 0;
    if (t != 1)
      expand_ = conv_->register_module(std::to_string(idx++), ConvBNAct(inp, hidden, 1, 1, 1, true));
    depthwise_ =
        conv_->register_module(std::to_string(idx++), ConvBNAct(hidden, hidden, 3, stride, hidden, true));
    project_name_ = std::to_string(idx++);
    project_ = conv_->register_module(project_name_, make_conv(hidden, oup, 1));
    project_bn_ = conv_->register_module(std::to_string(idx++), make_bn(oup));
  }
  if (eca_kernel > 0) eca_ = register_module("eca", ECA(eca_kernel));
}

std::pair<torch::Tensor, torch::Tensor> InvertedResidualImpl::forward(const torch::Tensor& x,
                                                                      const torch::Tensor& h) {
  auto z = expand_ ? expand_(x) : x;
  if (h.defined()) z = torch::cat({z, h}, 1);
  auto y = project_bn_(project_(depthwise_(z)));
  if (eca_) y = eca_(y);
  return {use_res_ ? x + y : y, y};
}

int64_t InvertedResidualImpl::prepare_inference() {
  if (expand_) expand_->fold();
  depthwise_->fold();
  fold_conv_bn(*conv_, project_name_, project_, project_bn_);
  return expand_ ? 3 : 2;
}

MobileNetV2Impl::MobileNetV2Impl(const MobileNetV2Options& o) : options_(o) {
  const int64_t k = o.rla_channels();
  const bool rla = k > 0;
  first_ = ConvBNAct(o.in_channels(), kStemWidth, 3, 2, 1, true);
  torch::nn::ModuleList features, stages, conv_outs, recurrent, concat_convs, stage_bns;
  if (rla)
    register_module("conv1", first_);
  else
    features->push_back(first_);

  // The whole network shares one recurrent conv (official: listed once per stride-2 cell).
  StageCell shared =
      rla ? make_stage_cell(o.aggregation(), kSetting[0].c, k, o.depthwise_recurrent()) : StageCell{};
  int64_t inp = kStemWidth;
  for (size_t j = 0; j < kSetting.size(); ++j) {
    const Row& r = kSetting[j];
    torch::nn::ModuleList row, bns;
    for (int64_t i = 0; i < r.n; ++i) {
      const int64_t eca_kernel = o.eca() ? (r.c < 96 ? 1 : 3) : 0;
      auto block = InvertedResidual(inp, r.c, i == 0 ? r.s : 1, r.t, k, eca_kernel);
      block_list_.push_back(block);
      if (rla) {
        row->push_back(block);
        auto bn = make_bn(k);
        bns->push_back(bn);
        state_bns_.push_back(bn);
      } else {
        features->push_back(block);
      }
      const std::string name =
          rla ? fmt::format("stages.{}.{}", j, i) : fmt::format("features.{}", features->size() - 1);
      blocks_.push_back(BlockInfo{name, static_cast<int64_t>(j), r.c, k});
      inp = r.c;
    }
    if (!rla) continue;
    stages->push_back(row);
    stage_bns->push_back(bns);
    StageCell cell = make_stage_cell(o.aggregation(), r.c, k, o.depthwise_recurrent());
    cell.recurrent_conv = shared.recurrent_conv;
    if (cell.conv_out) conv_outs->push_back(cell.conv_out);
    if (cell.concat_conv) concat_convs->push_back(cell.concat_conv);
    if (cell.recurrent_conv && (j == 0 || r.s == 2)) recurrent->push_back(cell.recurrent_conv);
    cells_.push_back(cell);
  }

  last_ = ConvBNAct(inp + k, kLastWidth, 1, 1, 1, true);
  if (rla) {
    register_module("stages", stages);
    if (!conv_outs->is_empty()) register_module("conv_outs", conv_outs);
    if (!recurrent->is_empty())
      register_module(o.depthwise_recurrent() ? "recurrent_dsconvs" : "recurrent_convs", recurrent);
    if (!concat_convs->is_empty()) register_module("concat_convs", concat_convs);
    if (o.aggregation() == Aggregation::kRla) register_module("stage_bns", stage_bns);
    register_module("conv2", last_);
    bn2_ = register_module("bn2", make_bn(k));
  } else {
    features->push_back(last_);
    register_module("features", features);
  }
  auto classifier = register_module("classifier", std::make_shared<torch::nn::Module>());
  classifier_ = classifier->register_module("1", Linear(kLastWidth, o.num_classes()));

  init_conv_bn(*this);
  torch::NoGradGuard ng;
  torch::nn::init::normal_(classifier_->weight, 0.0, 0.01);
  classifier_->bias.zero_();
}

FlowState MobileNetV2Impl::stem(const torch::Tensor& input) {
  check_input(input, options_.in_channels());
  return initial_state(first_(inference_input(input)), options_.rla_channels());
}

void MobileNetV2Impl::run_block(size_t index, FlowState& s) {
  auto& block = block_list_.at(index);
  auto [out, y] = block->forward(s.x, s.h);
  if (s.h.defined()) {
    s.h = update_state(options_.aggregation(), s.h, y, block->strided(), cells_[blocks_[index].stage],
                       state_bns_.empty() ? BatchNorm2d{nullptr} : state_bns_[index],
                       folded_cells_.empty() ? nullptr : &folded_cells_[index], s.h_zero);
    s.h_zero = false;
  }
  s.x = out;
}

std::shared_ptr<NetworkImpl> MobileNetV2Impl::copy() const {
  auto c = std::make_shared<MobileNetV2Impl>(options_);
  copy_values(*this, *c);
  return c;
}

void MobileNetV2Impl::prepare_inference(const InferenceOptions& o) {
  check_inference_options(o);
  eval();
  first_->fold();
  last_->fold();
  folded_ = 2;
  for (auto& b : block_list_) folded_ += b->prepare_inference();
  if (options_.rla_channels() > 0) {
    for (size_t i = 0; i < block_list_.size(); ++i) {
      const auto* bn = state_bns_.empty() ? nullptr : state_bns_[i].get();
      folded_cells_.push_back(fold_cell(options_.aggregation(), cells_[blocks_[i].stage], bn));
      folded_ += bn != nullptr;
    }
  }
  finish_inference(o, false, o.channels_last() ? "channels-last" : "nchw");
  if (!o.portable())
    for (auto& f : folded_cells_) f.use_onednn(o.channels_last(), false);
}

torch::Tensor MobileNetV2Impl::head(const FlowState& s) {
  auto x = s.x;
  if (s.h.defined()) {
    auto state = bn2_(s.h);
    x = torch::cat({x, torch::hardtanh_(state, 0.0, 6.0)}, 1);
  }
  // The official and torchvision code pool with a function call, which thop does not count.
  x = global_avg_pool(last_(x), /*thop_counted=*/false);
  x = torch::dropout(x, options_.dropout(), is_training());
  return classifier_(x);
}

}  // namespace rla::models
