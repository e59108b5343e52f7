#pragma once
// The recurrent layer aggregation cell G (docs/models.md): folds a block's output y into the
// state h. Its convolutions are owned by the model (so their names match the official
// state_dict: conv_outs.{s}, recurrent_convs.{s}, stage_bns.{s}.{b}) and shared by the blocks of
// a stage; this header holds only the update rule.
#include <string>

#include "rla/models/layers.h"

namespace rla::models {

enum class Aggregation {
  kRla,     ///< h = recurrent_conv(tanh(bn_t(h + conv_out(y))))   (the paper's cell)
  kSum,     ///< h = h + conv_out(y)                                (ResNet-like accumulation)
  kConcat,  ///< h = concat_conv(cat(y, h))                         (DenseNet-like, compressed)
};

Aggregation parse_aggregation(const std::string& name);  ///< "rla" | "sum" | "concat"
std::string to_string(Aggregation a);

/// What a residual block hands the cell as y (docs/models.md, "What the cell reads").
enum class StateInput {
  kBranch,  ///< the residual branch alone (last BN's output, before the shortcut is added)
  kOutput,  ///< the block's output relu(branch + shortcut): what the official code really passes
};

StateInput parse_state_input(const std::string& name);  ///< "branch" | "output"
std::string to_string(StateInput s);

/// The shared convolutions of one stage. Unused members stay null (e.g. no recurrent conv for
/// `sum`). All are owned and registered by the model.
struct StageCell {
  Conv2d conv_out{nullptr};        ///< 1x1, y channels -> k
  Conv2d recurrent_conv{nullptr};  ///< 3x3, k -> k (groups = k for the depthwise variant)
  Conv2d concat_conv{nullptr};     ///< 1x1, y channels + k -> k
};

/// One block's share of the cell in inference form (fold_cell), equal to G in eval mode:
/// kRla: bn(h + conv_out(y)) = conv_out_b(y) + s * h, conv_out_b = conv_out with the block's BN
/// folded in (weights s * W, bias beta - mean * s); kConcat: concat_conv split into its y and h
/// parts (oneDNN-layout tensors cannot be concatenated).
struct FoldedCell {
  Conv2d conv_out{nullptr};                     ///< kRla: conv_out with this block's BN folded in
  Conv2d conv_out_raw{nullptr};                 ///< kRla: conv_out itself, for the fused update
  torch::Tensor bn_scale, bn_shift;             ///< kRla: s and t of the BN, [k]: bn(v) = s v + t
  torch::Tensor h_scale;                        ///< kRla: s, [1, k, 1, 1]
  Conv2d h_scale_conv{nullptr};                 ///< kRla: s as a depthwise 1x1 conv (oneDNN-layout h)
  Conv2d concat_y{nullptr}, concat_h{nullptr};  ///< kConcat: the two input parts (bias in concat_y)
  /// Moves every convolution to channels-last and lets it call oneDNN (see Conv2dImpl::use_onednn).
  void use_onednn(bool channels_last, bool pack);
};
FoldedCell fold_cell(Aggregation kind, const StageCell& cell, const BatchNorm2dImpl* bn);

/// Applies G. h: [N, k, H, W] (already pooled to y's resolution), y: [N, C_y, H, W];
/// bn is the block's own BatchNorm (unused for sum / concat). Returns the new h [N, k, H, W].
/// With `folded`, the inference form runs instead, and `h_zero` (h known to be all zeros, e.g.
/// before the first update) skips h's terms; h may then be undefined.
torch::Tensor aggregate(Aggregation kind, const torch::Tensor& h, const torch::Tensor& y, StageCell& cell,
                        BatchNorm2d& bn, FoldedCell* folded = nullptr, bool h_zero = false);

/// One block's state update: avg-pools h 2x2 first when the block downsampled (`pool`), then
/// applies G. bn may be null for aggregations that have none.
torch::Tensor update_state(Aggregation kind, const torch::Tensor& h, const torch::Tensor& y, bool pool,
                           StageCell& cell, BatchNorm2d bn, FoldedCell* folded = nullptr,
                           bool h_zero = false);

/// Builds the per-stage convolutions needed by `kind` for a stage whose blocks emit
/// `y_channels`; the caller registers the non-null ones under the official names.
StageCell make_stage_cell(Aggregation kind, int64_t y_channels, int64_t k, bool depthwise_recurrent);

}  // namespace rla::models
