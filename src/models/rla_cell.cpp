#include "rla/models/rla_cell.h"

#include "rla/models/fused_batchnorm.h"
#include "rla/models/network.h"
#include "rla/util/env.h"

#include <cstdlib>
#include <string>

namespace rla::models {

Aggregation parse_aggregation(const std::string& name) {
  if (name == "rla") return Aggregation::kRla;
  if (name == "sum") return Aggregation::kSum;
  if (name == "concat") return Aggregation::kConcat;
  throw std::invalid_argument("unknown aggregation '" + name + "' (expected rla, sum or concat)");
}

std::string to_string(Aggregation a) {
  switch (a) {
    case Aggregation::kRla:
      return "rla";
    case Aggregation::kSum:
      return "sum";
    case Aggregation::kConcat:
      return "concat";
  }
  return "?";
}

StateInput parse_state_input(const std::string& name) {
  if (name == "branch") return StateInput::kBranch;
  if (name == "output") return StateInput::kOutput;
  throw std::invalid_argument("unknown state input '" + name + "' (expected branch or output)");
}

std::string to_string(StateInput s) {
  return s == StateInput::kBranch ? "branch" : "output";
}

namespace {

// RLA_FUSED_STATE=0 turns the one-call state update off (A/B runs, docs/performance.md).
bool fused_state_enabled() {
  static const bool enabled = util::env_switch_on("RLA_FUSED_STATE");
  return enabled;
}

torch::Tensor aggregate_folded(Aggregation kind, const torch::Tensor& h, const torch::Tensor& y,
                               StageCell& cell, FoldedCell& f, bool h_zero) {
  const bool onednn = y.is_mkldnn();  // oneDNN-layout tensors neither broadcast nor concatenate
  switch (kind) {
    case Aggregation::kRla: {
      // Prepared convolutions: tanh(bn(h + conv_out(y))) as one oneDNN call (sum, scale and
      // shift, tanh as post-ops; the result lands in h's storage, which is not needed after).
      if (fused_state_enabled() && !h_zero && !onednn && f.conv_out_raw && f.conv_out_raw->fusable(y) &&
          h.is_contiguous(at::MemoryFormat::ChannelsLast))
        return cell.recurrent_conv(f.conv_out_raw->forward_state_update(y, h, f.bn_scale, f.bn_shift));
      auto u = f.conv_out(y);
      if (!h_zero) onednn ? u.add_(f.h_scale_conv(h)) : u.addcmul_(h, f.h_scale);
      return cell.recurrent_conv(u.tanh_());
    }
    case Aggregation::kSum:
      return h_zero ? cell.conv_out(y) : cell.conv_out(y).add_(h);
    case Aggregation::kConcat:
      if (h_zero) return f.concat_y(y);
      return onednn ? f.concat_y(y).add_(f.concat_h(h)) : cell.concat_conv(torch::cat({y, h}, 1));
  }
  TORCH_CHECK(false, "unreachable aggregation");
}

}  // namespace

void FoldedCell::use_onednn(bool channels_last, bool pack) {
  for (auto* c : {&conv_out, &conv_out_raw, &h_scale_conv, &concat_y, &concat_h}) {
    if (!*c) continue;
    if (channels_last) to_channels_last(**c);
    (*c)->use_onednn(pack);
  }
}

FoldedCell fold_cell(Aggregation kind, const StageCell& cell, const BatchNorm2dImpl* bn) {
  FoldedCell f;
  if (kind == Aggregation::kRla) {
    TORCH_CHECK(bn != nullptr, "the RLA cell needs its block's BatchNorm");
    f.conv_out = Conv2d(cell.conv_out->folded(bn));
    f.conv_out_raw = Conv2d(cell.conv_out->folded(nullptr));
    const auto [s, t] = bn->affine();
    f.bn_scale = s.flatten().contiguous();
    f.bn_shift = t.flatten().contiguous();
    f.h_scale = s;
    f.h_scale_conv = Conv2d(bn->as_conv(/*with_shift=*/false));
  } else if (kind == Aggregation::kConcat) {
    const int64_t in = cell.concat_conv->options.in_channels(), k = cell.concat_conv->options.out_channels();
    f.concat_y = Conv2d(cell.concat_conv->folded(nullptr, 0, in - k));
    f.concat_h = Conv2d(cell.concat_conv->folded(nullptr, in - k, in));
  }
  return f;
}

torch::Tensor aggregate(Aggregation kind, const torch::Tensor& h, const torch::Tensor& y, StageCell& cell,
                        BatchNorm2d& bn, FoldedCell* folded, bool h_zero) {
  if (folded != nullptr) return aggregate_folded(kind, h, y, cell, *folded, h_zero);
  switch (kind) {
    case Aggregation::kRla:  // one autograd node in training (models/fused_batchnorm.h)
      return cell.recurrent_conv(batch_norm_act(
          h, *bn, BatchNormAct{/*add_before=*/cell.conv_out(y), /*add_after=*/{}, Activation::kTanh}));
    case Aggregation::kSum:
      return h + cell.conv_out(y);
    case Aggregation::kConcat:
      return cell.concat_conv(torch::cat({y, h}, 1));
  }
  TORCH_CHECK(false, "unreachable aggregation");
}

torch::Tensor update_state(Aggregation kind, const torch::Tensor& h, const torch::Tensor& y, bool pool,
                           StageCell& cell, BatchNorm2d bn, FoldedCell* folded, bool h_zero) {
  if (h_zero && folded != nullptr) return aggregate(kind, h, y, cell, bn, folded, true);
  return aggregate(kind, pool ? avg_pool_2x2(h) : h, y, cell, bn, folded, false);
}

StageCell make_stage_cell(Aggregation kind, int64_t y_channels, int64_t k, bool depthwise_recurrent) {
  StageCell cell;
  if (kind == Aggregation::kConcat) {
    cell.concat_conv = make_conv(y_channels + k, k, 1);
    return cell;
  }
  cell.conv_out = make_conv(y_channels, k, 1);
  if (kind == Aggregation::kRla) {
    cell.recurrent_conv = make_conv(k, k, 3, 1, depthwise_recurrent ? k : 1);
  }
  return cell;
}

}  // namespace rla::models
