#include "rla/models/densenet.h"

#include <cmath>

#include <fmt/format.h>

namespace rla::models {

DenseLayerImpl::DenseLayerImpl(int64_t in, int64_t growth, bool bottleneck) {
  bn1_ = register_module("bn1", make_bn(in));
  if (bottleneck) {
    conv1_ = register_module("conv1", make_conv(in, 4 * growth, 1));
    bn2_ = register_module("bn2", make_bn(4 * growth));
    conv2_ = register_module("conv2", make_conv(4 * growth, growth, 3));
  } else {
    conv1_ = register_module("conv1", make_conv(in, growth, 3));
  }
}

torch::Tensor DenseLayerImpl::forward(const torch::Tensor& input) {
  auto y = conv1_(bn1_(input).relu_());
  if (conv2_) y = conv2_(bn2_(y).relu_());
  return y;
}

TransitionImpl::TransitionImpl(int64_t in, int64_t out) {
  bn_ = register_module("bn", make_bn(in));
  conv_ = register_module("conv", make_conv(in, out, 1));
}

torch::Tensor TransitionImpl::forward(const torch::Tensor& x) {
  return avg_pool_2x2(conv_(bn_(x).relu_()), "transition_pool");
}

DenseNetImpl::DenseNetImpl(const DenseNetOptions& o) : options_(o) {
  const int64_t k = o.rla_channels();
  const bool rla = k > 0;
  conv1_ = register_module("conv1", make_conv(o.in_channels(), o.init_features(), 3));
  torch::nn::ModuleList blocks, transitions, conv_outs, recurrent, concat_convs, stage_bns;
  int64_t channels = o.init_features();
  for (size_t b = 0; b < o.layers().size(); ++b) {
    if (b > 0) {
      const auto out = static_cast<int64_t>(std::floor(channels * o.compression()));
      auto t = Transition(channels, out);
      transitions->push_back(t);
      transitions_.push_back(t);
      channels = out;
    }
    torch::nn::ModuleList block, bns;
    for (int64_t l = 0; l < o.layers()[b]; ++l) {
      auto layer = DenseLayer(channels + k, o.growth(), o.bottleneck());
      block->push_back(layer);
      layer_list_.push_back(layer);
      starts_block_.push_back(l == 0 && b > 0);
      channels += o.growth();
      blocks_.push_back(BlockInfo{fmt::format("blocks.{}.{}", b, l), static_cast<int64_t>(b), channels, k});
      if (rla) {
        auto bn = make_bn(k);
        bns->push_back(bn);
        state_bns_.push_back(bn);
      }
    }
    blocks->push_back(block);
    if (rla) {
      stage_bns->push_back(bns);
      StageCell cell = make_stage_cell(o.aggregation(), o.growth(), k, false);
      if (cell.conv_out) conv_outs->push_back(cell.conv_out);
      if (cell.recurrent_conv) recurrent->push_back(cell.recurrent_conv);
      if (cell.concat_conv) concat_convs->push_back(cell.concat_conv);
      cells_.push_back(cell);
    }
  }
  if (rla) {
    if (!conv_outs->is_empty()) register_module("conv_outs", conv_outs);
    if (!recurrent->is_empty()) register_module("recurrent_convs", recurrent);
    if (!concat_convs->is_empty()) register_module("concat_convs", concat_convs);
  }
  register_module("blocks", blocks);
  register_module("transitions", transitions);
  if (rla && o.aggregation() == Aggregation::kRla) register_module("stage_bns", stage_bns);
  bn_final_ = register_module("bn_final", make_bn(channels));
  if (rla) bn2_ = register_module("bn2", make_bn(k));
  fc_ = register_module("fc", Linear(channels + k, o.num_classes()));
  init_conv_bn(*this);
  torch::NoGradGuard ng;
  fc_->bias.zero_();
}

FlowState DenseNetImpl::stem(const torch::Tensor& input) {
  check_input(input, options_.in_channels());
  return initial_state(conv1_(inference_input(input)), options_.rla_channels());
}

void DenseNetImpl::run_block(size_t index, FlowState& s) {
  const int64_t stage = blocks_.at(index).stage;
  if (starts_block_[index]) {
    s.x = transitions_[stage - 1](s.x);
    if (s.h.defined()) s.h = avg_pool_2x2(s.h);
  }
  auto y = layer_list_[index](s.h.defined() ? torch::cat({s.x, s.h}, 1) : s.x);
  if (s.h.defined()) {
    BatchNorm2d bn = state_bns_.empty() ? BatchNorm2d{nullptr} : state_bns_[index];
    s.h = aggregate(options_.aggregation(), s.h, y, cells_[stage], bn,
                    folded_cells_.empty() ? nullptr : &folded_cells_[index], s.h_zero);
    s.h_zero = false;
  }
  s.x = torch::cat({s.x, y}, 1);
}

std::shared_ptr<NetworkImpl> DenseNetImpl::copy() const {
  auto c = std::make_shared<DenseNetImpl>(options_);
  copy_values(*this, *c);
  return c;
}

void DenseNetImpl::prepare_inference(const InferenceOptions& o) {
  NetworkImpl::prepare_inference(o);  // checks the options; eval mode, format, direct oneDNN
  folded_ = 0;
  if (options_.rla_channels() == 0) return;
  for (size_t i = 0; i < layer_list_.size(); ++i) {
    const auto* bn = state_bns_.empty() ? nullptr : state_bns_[i].get();
    folded_cells_.push_back(fold_cell(options_.aggregation(), cells_[blocks_[i].stage], bn));
    folded_ += bn != nullptr;
  }
  if (!o.portable())
    for (auto& f : folded_cells_) f.use_onednn(o.channels_last(), false);
}

torch::Tensor DenseNetImpl::head(const FlowState& s) {
  auto x = bn_final_(s.x).relu_();
  if (s.h.defined()) x = torch::cat({x, bn2_(s.h).relu_()}, 1);
  return fc_(global_avg_pool(x));
}

}  // namespace rla::models
