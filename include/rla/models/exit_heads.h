#pragma once
// Early-exit classifiers ("exits") after blocks of a backbone (docs/early_exit.md): what they
// read, where they sit, and the joint training loss. They live outside the backbone's
// state_dict (names `heads.{j}.bn`, `heads.{j}.fc`); dynamic inference is in
// inference/early_exit.h.
#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

#include "rla/models/layers.h"
#include "rla/models/network.h"

namespace rla::models {

enum class ExitPlacement {
  kBlock,  ///< after every block but the last
  kStage,  ///< after the last block of every stage but the last
};
/// "block" | "stage"; throws util::FieldError("exits") otherwise.
ExitPlacement parse_exit_placement(const std::string& s);
std::string to_string(ExitPlacement p);
void to_json(nlohmann::json& j, ExitPlacement p);  ///< its name
void from_json(const nlohmann::json& j, ExitPlacement& p);

/// What an exit classifies from.
enum class ExitInput {
  kBoth,   ///< gap(cat(x_i, relu(bn(h_i)))): the final head's input, at an earlier depth
  kMain,   ///< gap(x_i): the main path alone (the only choice on plain nets)
  kState,  ///< gap(relu(bn(h_i))): the aggregated state alone (RLA nets)
};
/// "both" | "main" | "state"; throws util::FieldError("exit_input") otherwise.
ExitInput parse_exit_input(const std::string& s);
std::string to_string(ExitInput e);
void to_json(nlohmann::json& j, ExitInput e);  ///< its name
/// Its name; "" is kBoth (configurations of runs without exits stored "" before the default was).
void from_json(const nlohmann::json& j, ExitInput& e);

/// The exit heads of one backbone: exit j is fc_j(gap(features)) with the features chosen by
/// ExitInput. Plain nets (no state) accept only kMain and kBoth (which then reads x alone).
/// With `projection` P > 0 every head first maps its features to P channels (1x1 convolution,
/// BatchNorm, ReLU: `heads.{j}.proj`, `heads.{j}.proj_bn`) and its fc reads those P: heads that
/// read h (k channels), x or both then have the same capacity, whatever their input's width.
class ExitHeadsImpl : public torch::nn::Module {
 public:
  ExitHeadsImpl(const NetworkImpl& net, int64_t num_classes, ExitPlacement placement,
                ExitInput input = ExitInput::kBoth, int64_t projection = 0);
  /// Logits [N, classes] of exit j from the state after block after_block()[j].
  torch::Tensor forward(size_t j, const FlowState& state);
  /// The block index after which each exit sits, ascending.
  const std::vector<size_t>& after_block() const { return after_block_; }
  size_t size() const { return after_block_.size(); }
  ExitInput input() const { return input_; }
  int64_t projection() const { return projection_; }

 private:
  ExitInput input_;
  int64_t projection_;
  std::vector<size_t> after_block_;
  std::vector<BatchNorm2d> bns_;
  std::vector<Conv2d> projs_;
  std::vector<BatchNorm2d> proj_bns_;
  std::vector<Linear> fcs_;
};
TORCH_MODULE(ExitHeads);

/// One pass through the backbone: logits of every exit, then the final head's (size E + 1).
std::vector<torch::Tensor> forward_all_exits(NetworkImpl& net, ExitHeadsImpl& heads,
                                             const torch::Tensor& input);

/// Joint loss: CE(final) + weight * mean_j CE(exit j). With weight < 0, the final head is left
/// out and the exits are averaged alone (post-hoc training of frozen backbones). Returns
/// {final logits, loss}.
std::pair<torch::Tensor, torch::Tensor> exit_loss(NetworkImpl& net, ExitHeadsImpl& heads,
                                                  const torch::Tensor& input, const torch::Tensor& labels,
                                                  double weight);

}  // namespace rla::models
