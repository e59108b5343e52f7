#pragma once
// Adaptive computation (docs/early_exit.md): dynamic inference that stops each sample at the
// first exit (models/exit_heads.h) whose max-softmax reaches a threshold — later blocks are not
// computed for it — and the MACs of leaving at each exit.
#include <string>
#include <vector>

#include "rla/models/exit_heads.h"

namespace rla::inference {

struct DynamicResult {
  torch::Tensor logits;             ///< [N, classes]: from the exit each sample left at
  std::vector<int64_t> exit_index;  ///< per sample: 0..E-1 for exits, E for the final head
};

/// Dynamic inference (eval mode, no grad): each sample leaves at the first exit whose
/// max-softmax >= tau; the remaining samples continue through the next blocks. tau >= 1 turns
/// exits off: every sample runs the full network and the logits equal net.forward exactly.
DynamicResult dynamic_forward(models::NetworkImpl& net, models::ExitHeadsImpl& heads,
                              const torch::Tensor& input, double tau);

/// MACs per image of leaving at exit j (j = E: the final head), counting the stem, the blocks
/// up to the exit and every exit head evaluated on the way. input_chw: {C, H, W}.
std::vector<int64_t> exit_macs(models::NetworkImpl& net, models::ExitHeadsImpl& heads,
                               const std::vector<int64_t>& input_chw);

}  // namespace rla::inference
