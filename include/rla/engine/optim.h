#pragma once
// Optimisers and weight averaging for the training loop: SGD (+ Nesterov), AdamW and RMSprop over
// two parameter groups (weight decay on the weights; its own value on norm-layer parameters and
// biases), gradient-norm clipping, and an exponential moving average of the weights.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "rla/models/layers.h"
#include "rla/models/network.h"

namespace rla::engine {

struct OptimizerConfig {
  std::string kind = "sgd";  ///< sgd | adamw | rmsprop
  double lr = 0.1;
  double momentum = 0.9;  ///< SGD and RMSprop
  bool nesterov = true;   ///< SGD
  double weight_decay = 5e-4;
  /// Weight decay of normalisation-layer parameters and of every bias; < 0: weight_decay.
  double norm_weight_decay = -1.0;
  double beta1 = 0.9, beta2 = 0.999;  ///< AdamW
  double alpha = 0.99;                ///< RMSprop smoothing
  double eps = 1e-8;                  ///< AdamW and RMSprop
};

/// Optimiser names, for --help and errors.
std::vector<std::string> optimizer_names();
/// Throws std::invalid_argument with a one-line message naming the bad value.
void validate_optimizer(const OptimizerConfig& config);

/// `module`'s trainable parameters split for weight decay, each shared tensor once: `decay` holds
/// the weights of convolutions and linear layers, `no_decay` the parameters of normalisation
/// layers (BatchNorm, GroupNorm, LayerNorm) and every parameter named "bias".
struct ParameterGroups {
  std::vector<torch::Tensor> decay, no_decay;
  std::vector<torch::Tensor> all;  ///< both, in the module's parameter order
};
ParameterGroups split_for_weight_decay(const torch::nn::Module& module);
/// Appends `more`'s groups to `groups` (skipping tensors already present).
void append_groups(ParameterGroups& groups, const ParameterGroups& more);

/// The optimiser over `groups`: one group of `all` when both decays are equal (the layout of
/// checkpoints written before the split existed), else the decay group then the no-decay group.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerConfig& config,
                                                        const ParameterGroups& groups);
/// Sets the learning rate of every parameter group.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

/// Exponential moving average of a network's weights (parameters and floating buffers; integer
/// buffers are copied): every `every` optimiser steps, avg = decay * avg + (1 - decay) * weights.
/// The average is a copy() of the network, so it can be evaluated and saved like one.
class WeightAverage {
 public:
  WeightAverage(const models::NetworkImpl& net, double decay, int64_t every);
  /// Called after optimiser step number `step` (1-based): averages when step % every == 0.
  void update(const models::NetworkImpl& net, int64_t step);
  /// Resets the average to the current weights.
  void reset(const models::NetworkImpl& net);
  models::NetworkImpl& model() { return *average_; }
  const models::NetworkImpl& model() const { return *average_; }
  double decay() const { return decay_; }

 private:
  /// avg = keep * avg + (1 - keep) * weights for floating tensors; keep = 0 or integer: a copy.
  void blend(const models::NetworkImpl& net, double keep);

  models::Network average_;
  double decay_;
  int64_t every_;
};

}  // namespace rla::engine
