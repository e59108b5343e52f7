#pragma once
// The recurrent layer aggregation cell G (SPEC §2, §3.5): folds a block's output y into the
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

/// Applies G. h: [N, k, H, W] (already pooled to y's resolution), y: [N, C_y, H, W];
/// bn is the block's own BatchNorm (unused for sum / concat). Returns the new h [N, k, H, W].
torch::Tensor aggregate(Aggregation kind, const torch::Tensor& h, const torch::Tensor& y, StageCell& cell,
                        BatchNorm2d& bn);

/// One block's state update: avg-pools h 2x2 first when the block downsampled (`pool`), then
/// applies G. bn may be null for aggregations that have none.
torch::Tensor update_state(Aggregation kind, const torch::Tensor& h, const torch::Tensor& y, bool pool,
                           StageCell& cell, BatchNorm2d bn);

/// Builds the per-stage convolutions needed by `kind` for a stage whose blocks emit
/// `y_channels`; the caller registers the non-null ones under the official names.
StageCell make_stage_cell(Aggregation kind, int64_t y_channels, int64_t k, bool depthwise_recurrent);

}  // namespace rla::models
