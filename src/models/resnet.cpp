#include "rla/models/resnet.h"

#include <fmt/format.h>

#include <ATen/ATen.h>

#include "prepared_conv.h"
#include "rla/models/fused_batchnorm.h"

namespace rla::models {

ResBlockImpl::ResBlockImpl(const Config& c, const ResBlockImpl* share)
    : bottleneck_(c.bottleneck), state_channels_(c.state_channels), state_input_(c.state_input) {
  const int64_t expansion = c.bottleneck ? 4 : 1;
  out_channels_ = c.planes * expansion;
  const int64_t in = c.inplanes + c.state_channels;
  // Registration order follows Python: conv1 bn1 conv2 bn2 [conv3 bn3] downsample se eca.
  if (c.bottleneck) {
    const int64_t width = static_cast<int64_t>(c.planes * (c.base_width / 64.0)) * c.groups;
    conv1 = register_module("conv1", share ? share->conv1 : make_conv(in, width, 1));
    bn1 = register_module("bn1", make_bn(width));
    conv2 = register_module("conv2", share ? share->conv2 : make_conv(width, width, 3, c.stride, c.groups));
    bn2 = register_module("bn2", make_bn(width));
    conv3 = register_module("conv3", share ? share->conv3 : make_conv(width, out_channels_, 1));
    bn3 = register_module("bn3", make_bn(out_channels_));
  } else {
    conv1 = register_module("conv1", share ? share->conv1 : make_conv(in, c.planes, 3, c.stride));
    bn1 = register_module("bn1", make_bn(c.planes));
    conv2 = register_module("conv2", share ? share->conv2 : make_conv(c.planes, c.planes, 3));
    bn2 = register_module("bn2", make_bn(c.planes));
  }
  if (c.stride != 1 || c.inplanes != out_channels_) {
    downsample = register_module("downsample", ConvBNAct(c.inplanes, out_channels_, 1, c.stride, 1, false));
    pools_state_ = c.stride != 1;
  }
  if (c.se) se = register_module("se", share ? share->se : SE(out_channels_));
  if (c.eca_kernel > 0) eca = register_module("eca", share ? share->eca : ECA(c.eca_kernel));
}

std::pair<torch::Tensor, torch::Tensor> ResBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& h,
                                                              bool h_zero) {
  if (prepared_) return forward_prepared(x, h, h_zero);
  // Activations run in place on fresh BN / sum outputs (as the official inplace=True ReLUs):
  // no extra tensor per activation in training.
  // In training each BN runs with its ReLU (and the residual sum) as one autograd node
  // (models/fused_batchnorm.h) where it applies, else as the separate operations.
  const BatchNormAct relu{{}, {}, Activation::kRelu};
  auto out = batch_norm_act(conv1(h.defined() ? torch::cat({x, h}, 1) : x), *bn1, relu);
  if (bottleneck_) out = batch_norm_act(conv2(out), *bn2, relu);
  auto& last = bottleneck_ ? conv3 : conv2;
  auto& last_bn = bottleneck_ ? bn3 : bn2;
  auto identity = downsample ? downsample(x) : x;
  const bool branch_needed = state_input_ == StateInput::kBranch && state_channels_ > 0;  // as y
  if (!branch_needed && !se && !eca) {
    auto result =
        batch_norm_act(last(out), *last_bn, BatchNormAct{{}, /*add_after=*/identity, Activation::kRelu});
    return {result, result};
  }
  out = last_bn(last(out));
  if (se) out = se(out);
  if (eca) out = eca(out);
  auto result = (out + identity).relu_();
  return {result, state_input_ == StateInput::kOutput ? result : out};
}

// The inference form: BN folded into every convolution, ReLUs and the residual add fused into
// the convolutions before them (Conv2dImpl::forward_fused). The block consumes x: the residual
// add may write into x's storage.
std::pair<torch::Tensor, torch::Tensor> ResBlockImpl::forward_prepared(const torch::Tensor& x,
                                                                       const torch::Tensor& h, bool h_zero) {
  torch::Tensor out;
  if (conv1_x && h_zero) {
    out = conv1_x->forward_fused(x, true);  // h's part of conv1 sees only zeros
  } else if (conv1_x && (split_ || x.is_mkldnn())) {
    out = conv1_x->forward_fused(x, true, conv1_h(h));
  } else {
    out = conv1->forward_fused(h.defined() ? torch::cat({x, h}, 1) : x, true);
  }
  if (bottleneck_) out = conv2->forward_fused(out, true);
  auto& last = bottleneck_ ? conv3 : conv2;
  auto identity = downsample ? downsample(x) : x;
  const bool branch_needed = state_input_ == StateInput::kBranch && state_channels_ > 0;  // as y
  if (!branch_needed && !se && !eca) {
    auto result = last->forward_fused(out, true, identity);
    return {result, result};
  }
  out = last(out);
  if (se) out = se(out);
  if (eca) out = eca(out);
  if (branch_needed) return {(out + identity).relu_(), out};
  auto result = out.add_(identity).relu_();
  return {result, result};
}

int64_t ResBlockImpl::prepare_inference(bool split) {
  if (state_channels_ > 0) {
    const int64_t in = conv1->options.in_channels(), in_x = in - state_channels_;
    conv1_x = register_module("conv1_x", Conv2d(conv1->folded(bn1.get(), 0, in_x)));
    conv1_h = register_module("conv1_h", Conv2d(conv1->folded(bn1.get(), in_x, in)));
    conv1_h->bias = torch::Tensor();  // the shift is added once, by conv1_x
  }
  fold_conv_bn(*this, "conv1", conv1, bn1);
  fold_conv_bn(*this, "conv2", conv2, bn2);
  int64_t folded = 2;
  if (bottleneck_) fold_conv_bn(*this, "conv3", conv3, bn3), ++folded;
  if (downsample) downsample->fold(), ++folded;
  split_ = split;
  prepared_ = true;
  return folded;
}

ResNetImpl::ResNetImpl(const ResNetOptions& o) : options_(o) {
  TORCH_CHECK(o.layers().size() == o.planes().size(), "ResNet: ", o.layers().size(), " stage depths but ",
              o.planes().size(), " stage widths");
  TORCH_CHECK(o.eca_kernels().empty() || o.eca_kernels().size() == o.layers().size(),
              "ResNet: ECA needs one kernel per stage (", o.layers().size(), "), got ",
              o.eca_kernels().size());
  const bool rla = o.rla_channels() > 0;
  const int64_t k = o.rla_channels();
  const int64_t stem_width = o.cifar_stem() ? o.planes()[0] : 64;
  conv1_ = register_module("conv1", o.cifar_stem() ? make_conv(o.in_channels(), stem_width, 3)
                                                   : make_conv(o.in_channels(), stem_width, 7, 2));
  bn1_ = register_module("bn1", make_bn(stem_width));

  // Build blocks stage by stage; register them under torchvision or official names below.
  std::vector<torch::nn::ModuleList> stage_lists;
  int64_t inplanes = stem_width;
  for (size_t s = 0; s < o.layers().size(); ++s) {
    torch::nn::ModuleList list;
    const ResBlockImpl* shared_src = nullptr;
    for (int64_t b = 0; b < o.layers()[s]; ++b) {
      const int64_t stride = (b == 0 && s > 0) ? 2 : 1;
      ResBlockImpl::Config cfg{inplanes,
                               o.planes()[s],
                               stride,
                               o.bottleneck(),
                               o.groups(),
                               o.width_per_group(),
                               k,
                               o.se(),
                               o.eca_kernels().empty() ? 0 : o.eca_kernels()[s],
                               o.state_input()};
      auto block = ResBlock(cfg, o.shared() ? shared_src : nullptr);
      if (b == 1) shared_src = block.get();
      inplanes = block->out_channels();
      list->push_back(block);
      block_list_.push_back(block);
      const std::string name = rla ? fmt::format("stages.{}.{}", s, b) : fmt::format("layer{}.{}", s + 1, b);
      blocks_.push_back(BlockInfo{name, static_cast<int64_t>(s), inplanes, k});
    }
    stage_lists.push_back(list);
  }

  if (!rla) {
    for (size_t s = 0; s < stage_lists.size(); ++s)
      register_module(fmt::format("layer{}", s + 1), stage_lists[s]);
  } else {
    torch::nn::ModuleList conv_outs, recurrent_convs, concat_convs, stages, stage_bns;
    for (size_t s = 0; s < stage_lists.size(); ++s) {
      auto first = stage_lists[s]->ptr<ResBlockImpl>(0);
      StageCell cell = make_stage_cell(o.aggregation(), first->out_channels(), k, false);
      if (cell.conv_out) conv_outs->push_back(cell.conv_out);
      if (cell.recurrent_conv) recurrent_convs->push_back(cell.recurrent_conv);
      if (cell.concat_conv) concat_convs->push_back(cell.concat_conv);
      cells_.push_back(cell);
      stages->push_back(stage_lists[s]);
      torch::nn::ModuleList bns;
      for (int64_t b = 0; b < o.layers()[s]; ++b) {
        auto bn = make_bn(k);
        bns->push_back(bn);
        state_bns_.push_back(bn);
      }
      stage_bns->push_back(bns);
    }
    // Official order: conv_outs recurrent_convs stages stage_bns bn2 fc.
    if (!conv_outs->is_empty()) register_module("conv_outs", conv_outs);
    if (!recurrent_convs->is_empty()) register_module("recurrent_convs", recurrent_convs);
    if (!concat_convs->is_empty()) register_module("concat_convs", concat_convs);
    register_module("stages", stages);
    if (o.aggregation() == Aggregation::kRla) register_module("stage_bns", stage_bns);
    bn2_ = register_module("bn2", make_bn(k));
  }
  fc_ = register_module("fc", Linear(inplanes + k, o.num_classes()));

  init_conv_bn(*this);
  if (o.zero_init_residual()) {
    torch::NoGradGuard ng;
    for (auto& b : block_list_) b->last_bn()->weight.zero_();
  }
}

FlowState ResNetImpl::stem(const torch::Tensor& input) {
  check_input(input, options_.in_channels());
  // Prepared for inference, the stem's BatchNorm is in conv1 and its ReLU a fused post-op.
  auto x = bn1_->folded ? conv1_->forward_fused(inference_input(input), /*relu=*/true)
                        : batch_norm_act(conv1_(inference_input(input)), *bn1_,
                                         BatchNormAct{{}, {}, Activation::kRelu});
  if (!options_.cifar_stem()) x = max_pool_3x3s2(x);
  return initial_state(x, options_.rla_channels());
}

void ResNetImpl::run_block(size_t index, FlowState& s) {
  auto& block = block_list_.at(index);
  auto [out, y] = block->forward(s.x, s.h, s.h_zero);
  if (options_.rla_channels() > 0) {
    s.h = update_state(options_.aggregation(), s.h, y, block->pools_state(), cells_[blocks_[index].stage],
                       state_bns_.empty() ? BatchNorm2d{nullptr} : state_bns_[index],
                       folded_cells_.empty() ? nullptr : &folded_cells_[index], s.h_zero);
    s.h_zero = false;
  }
  s.x = out;
}

torch::Tensor ResNetImpl::head(const FlowState& s) {
  if (s.x.is_mkldnn()) {  // oneDNN layout: pool first, then back to ordinary tensors
    auto pooled = at::adaptive_avg_pool2d(s.x, {1, 1}).to_dense().flatten(1);
    if (s.h.defined()) {
      auto state = at::adaptive_avg_pool2d(head_bn_conv_(s.h).relu_(), {1, 1}).to_dense().flatten(1);
      pooled = torch::cat({pooled, state}, 1);
    }
    return fc_(pooled);
  }
  auto x = s.x;
  if (s.h.defined()) x = torch::cat({x, bn2_(s.h).relu_()}, 1);
  return fc_(global_avg_pool(x));
}

std::shared_ptr<NetworkImpl> ResNetImpl::copy() const {
  auto c = std::make_shared<ResNetImpl>(options_);
  copy_values(*this, *c);
  return c;
}

void ResNetImpl::prepare_inference(const InferenceOptions& o) {
  check_inference_options(o);
  eval();
  fold_conv_bn(*this, "conv1", conv1_, bn1_);
  folded_ = 1;
  const auto& w = conv1_->weight;
  const bool prepared = prepared_convs_enabled() && options_.groups() == 1;
  // With prepared convolutions whose sum is a fused post-op, conv1 over [x, h] as two
  // convolutions beats materialising cat(x, h): +6 % (rla_resnet50) to +21 % (rla_resnet20 b32),
  // docs/performance.md, round four.
  const bool fused_split = prepared && fused_post_ops_enabled() && !o.portable() && o.channels_last() &&
                           w.device().is_cpu() && w.scalar_type() == torch::kFloat;
  bool attention = false;
  for (auto& b : block_list_) {
    folded_ += b->prepare_inference(o.split_concat() || fused_split);
    attention = attention || b->se || b->eca;
  }
  const int64_t k = options_.rla_channels();
  if (k > 0) {
    for (size_t i = 0; i < block_list_.size(); ++i) {
      const auto* bn = state_bns_.empty() ? nullptr : state_bns_[i].get();
      folded_cells_.push_back(fold_cell(options_.aggregation(), cells_[blocks_[i].stage], bn));
      folded_ += bn != nullptr;
    }
  }
  // oneDNN-layout activations: measured faster for ImageNet-style ResNets only, and only while
  // convolutions are not prepared (prepared_conv.h: channels-last with prepared primitives beat
  // them by 20-30 % at batch 1, docs/performance.md), which grouped ones (ResNeXt) are not;
  // SE / ECA broadcast, which oneDNN-layout tensors cannot.
  const bool wanted =
      o.backend() == "mkldnn" || (o.backend() == "auto" && !options_.cifar_stem() && !prepared);
  const bool onednn =
      wanted && at::hasMKLDNN() && !attention && w.device().is_cpu() && w.scalar_type() == torch::kFloat;
  if (onednn && k > 0)
    head_bn_conv_ = register_module("head_bn_conv", Conv2d(bn2_->as_conv(/*with_shift=*/true)));
  finish_inference(o, onednn, onednn ? "mkldnn" : (o.channels_last() ? "channels-last" : "nchw"));
  if (!o.portable())
    for (auto& f : folded_cells_) f.use_onednn(o.channels_last(), onednn);
}

}  // namespace rla::models
