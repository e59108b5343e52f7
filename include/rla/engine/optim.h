#pragma once
// Optimisers and weight averaging for the training loop: SGD (+ Nesterov), AdamW and RMSprop over
// two parameter groups (weight decay on the weights; its own value on norm-layer parameters and
// biases), gradient-norm clipping, and an exponential moving average of the weights.
#include <torch/torch.h>
#include <nlohmann/json_fwd.hpp>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "rla/models/layers.h"
#include "rla/models/network.h"

namespace rla::engine {

enum class OptimizerKind { kSgd, kAdamW, kRmsprop };
/// "sgd" | "adamw" | "rmsprop"; throws util::FieldError("optimizer") otherwise.
OptimizerKind parse_optimizer_kind(const std::string& name);
std::string to_string(OptimizerKind kind);
/// Optimiser names, for help texts and errors.
std::vector<std::string> optimizer_names();
void to_json(nlohmann::json& j, OptimizerKind kind);  ///< its name
void from_json(const nlohmann::json& j, OptimizerKind& kind);

/// The optimiser and what acts on its step (the learning rate is the schedule's, engine/schedule.h).
struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kSgd;
  double momentum = 0.9;  ///< SGD and RMSprop
  bool nesterov = true;   ///< SGD
  double weight_decay = 5e-4;
  /// Weight decay of normalisation-layer parameters and of every bias; < 0: weight_decay.
  double norm_weight_decay = -1.0;
  std::array<double, 2> betas = {0.9, 0.999};  ///< AdamW
  double rmsprop_alpha = 0.99;                 ///< RMSprop smoothing
  double eps = 1e-8;                           ///< AdamW and RMSprop
  double grad_clip = 0.0;  ///< clip the gradients' global L2 norm to this (after the all-reduce); 0: off

  /// The options with their config.json keys (util/json_fields.h).
  template <typename Self, typename Visit>
  static void visit_fields(Self& self, Visit&& visit) {
    visit("optimizer", self.kind);
    visit("momentum", self.momentum);
    visit("nesterov", self.nesterov);
    visit("weight_decay", self.weight_decay);
    visit("norm_weight_decay", self.norm_weight_decay);
    visit("betas", self.betas);
    visit("rmsprop_alpha", self.rmsprop_alpha);
    visit("opt_eps", self.eps);
    visit("grad_clip", self.grad_clip);
  }
};

/// Throws util::FieldError naming the field (its config.json key) of a value out of range.
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

/// The optimiser over `groups` at learning rate `lr`: one group of `all` when both decays are
/// equal (the layout of checkpoints written before the split existed), else the decay group then
/// the no-decay group.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerConfig& config,
                                                        const ParameterGroups& groups, double lr);
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
