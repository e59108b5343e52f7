#pragma once
// BatchNorm with what surrounds it in a training step, act(bn(x + add_before) + add_after), as one
// autograd node with its own backward (docs/performance.md, "Fused BatchNorm in training"):
//   RLA state update   tanh(bn(h + conv_out(y)))      add_before = conv_out(y), tanh
//   conv -> BN -> ReLU relu(bn(conv(x)))              relu
//   residual output    relu(bn(conv(out)) + identity)  add_after = identity, relu
// The separate operations each make their own memory passes forward and backward (and the narrow
// k-channel state's BatchNorm a channels-last -> NCHW detour); the node makes two forward and two
// backward. Where it does not apply (batch_norm_act_fusable), the same function runs the separate
// operations, so callers have one code path.
#include <torch/torch.h>

#include "rla/models/layers.h"

namespace rla::models {

enum class Activation { kNone, kRelu, kTanh };

/// What surrounds the BatchNorm. Tensors are optional (undefined = absent) and have x's shape.
struct BatchNormAct {
  torch::Tensor add_before;  ///< added to x before the BatchNorm
  torch::Tensor add_after;   ///< added to the BatchNorm's output before the activation
  Activation activation = Activation::kNone;
};

/// Whether the fused node applies: bn in training mode (batch statistics), x and the present
/// addends float CPU tensors of one shape [N, C, H, W], channels-last (the trainer's layout), no op
/// counter listening (models/op_counter.h), and the process-wide switch on.
bool batch_norm_act_fusable(const torch::Tensor& x, const BatchNorm2dImpl& bn, const BatchNormAct& with = {});

/// act(bn(x + add_before) + add_after). Fused (one autograd node: the result and the gradients
/// of x, the addends, bn.weight and bn.bias equal those of the separate operations within float
/// rounding; bn's running statistics and num_batches_tracked updated as torch.nn.BatchNorm2d
/// does) where batch_norm_act_fusable, else the separate operations. [N, C, H, W] in x's layout.
torch::Tensor batch_norm_act(const torch::Tensor& x, BatchNorm2dImpl& bn, const BatchNormAct& with = {});

/// The process-wide switch (default on; the environment variable RLA_FUSED_TRAIN=0 turns it off
/// at start) for A/B runs and for tests that compare both paths.
void set_batch_norm_fusion(bool enabled);
bool batch_norm_fusion();

}  // namespace rla::models
