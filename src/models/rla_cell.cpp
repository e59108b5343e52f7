#include "rla/models/rla_cell.h"

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

torch::Tensor aggregate(Aggregation kind, const torch::Tensor& h, const torch::Tensor& y, StageCell& cell,
                        BatchNorm2d& bn) {
  switch (kind) {
    case Aggregation::kRla:
      return cell.recurrent_conv(bn(h + cell.conv_out(y)).tanh_());
    case Aggregation::kSum:
      return h + cell.conv_out(y);
    case Aggregation::kConcat:
      return cell.concat_conv(torch::cat({y, h}, 1));
  }
  TORCH_CHECK(false, "unreachable aggregation");
}

torch::Tensor update_state(Aggregation kind, const torch::Tensor& h, const torch::Tensor& y, bool pool,
                           StageCell& cell, BatchNorm2d bn) {
  return aggregate(kind, pool ? avg_pool_2x2(h) : h, y, cell, bn);
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
