#pragma once
// Adaptive computation (SPEC §5): classifiers after blocks ("exits"), trained jointly with the
// backbone or post hoc, and dynamic inference that stops each sample at the first exit whose
// max-softmax reaches a threshold — later blocks are not computed for it.
#include <string>
#include <vector>

#include "rla/models/layers.h"
#include "rla/models/network.h"

namespace rla::inference {

enum class ExitPlacement {
  kBlock,  ///< after every block but the last
  kStage,  ///< after the last block of every stage but the last
};
ExitPlacement parse_exit_placement(const std::string& s);  ///< "block" | "stage"

/// The exit heads of one backbone, kept outside its state_dict (names `heads.{j}.bn`,
/// `heads.{j}.fc`). On RLA nets exit j reads fc_j(gap(cat(x_i, relu(bn_j(h_i))))); on plain nets
/// fc_j(gap(x_i)) — the same head the final classifier uses, at an earlier depth.
class ExitHeadsImpl : public torch::nn::Module {
 public:
  ExitHeadsImpl(const models::NetworkImpl& net, int64_t num_classes, ExitPlacement placement);
  /// Logits [N, classes] of exit j from the state after block after_block()[j].
  torch::Tensor forward(size_t j, const models::FlowState& state);
  /// The block index after which each exit sits, ascending.
  const std::vector<size_t>& after_block() const { return after_block_; }
  size_t size() const { return after_block_.size(); }

 private:
  std::vector<size_t> after_block_;
  std::vector<models::BatchNorm2d> bns_;
  std::vector<models::Linear> fcs_;
};
TORCH_MODULE(ExitHeads);

/// One pass through the backbone: logits of every exit, then the final head's (size E + 1).
std::vector<torch::Tensor> forward_all_exits(models::NetworkImpl& net, ExitHeadsImpl& heads,
                                             const torch::Tensor& input);

/// Joint loss: CE(final) + weight * mean_j CE(exit j). With weight < 0, the final head is left
/// out and the exits are averaged alone (post-hoc training of frozen backbones).
std::pair<torch::Tensor, torch::Tensor> exit_loss(models::NetworkImpl& net, ExitHeadsImpl& heads,
                                                  const torch::Tensor& input, const torch::Tensor& labels,
                                                  double weight);

struct DynamicResult {
  torch::Tensor logits;             ///< [N, classes]: from the exit each sample left at
  std::vector<int64_t> exit_index;  ///< per sample: 0..E-1 for exits, E for the final head
};

/// Dynamic inference (eval mode, no grad): each sample leaves at the first exit whose
/// max-softmax >= tau; the remaining samples continue through the next blocks. tau >= 1 turns
/// exits off: every sample runs the full network and the logits equal net.forward exactly.
DynamicResult dynamic_forward(models::NetworkImpl& net, ExitHeadsImpl& heads, const torch::Tensor& input,
                              double tau);

/// MACs per image of leaving at exit j (j = E: the final head), counting the stem, the blocks
/// up to the exit and every exit head evaluated on the way. input_chw: {C, H, W}.
std::vector<int64_t> exit_macs(models::NetworkImpl& net, ExitHeadsImpl& heads,
                               const std::vector<int64_t>& input_chw);

}  // namespace rla::inference
