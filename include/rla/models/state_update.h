#pragma once
// The RLA state update of training, tanh(bn(h + c)) with the BatchNorm on batch statistics, as
// one autograd node with its own backward (docs/performance.md, "The state update in training").
// The separate operations make about ten memory passes over the narrow k-channel state (add, a
// channels-last -> NCHW copy for ATen's batch norm, its two passes, the copy back, tanh, and as
// many backward); this node makes four forward and three backward.
#include <torch/torch.h>

#include "rla/models/layers.h"

namespace rla::models {

/// Whether state_update_fused applies: bn in training mode (batch statistics, a momentum),
/// h and c float CPU tensors of one shape [N, k, H, W], both channels-last (the trainer's
/// layout), no op counter listening, and the process-wide switch on.
bool state_update_fusable(const torch::Tensor& h, const torch::Tensor& c, const BatchNorm2dImpl& bn);

/// tanh(bn(h + c)) as one autograd node: the result and the gradients of h, c, bn.weight and
/// bn.bias equal those of the separate operations (within float rounding); bn's running
/// statistics and num_batches_tracked are updated as torch.nn.BatchNorm2d does (unbiased
/// variance into running_var). Requires state_update_fusable. Returns [N, k, H, W], channels-last.
torch::Tensor state_update_fused(const torch::Tensor& h, const torch::Tensor& c, BatchNorm2dImpl& bn);

/// The process-wide switch (default on; the environment variable RLA_FUSED_STATE_TRAIN=0 turns it
/// off at start) for A/B runs and for tests that compare both paths.
void set_state_update_fusion(bool enabled);
bool state_update_fusion();

}  // namespace rla::models
