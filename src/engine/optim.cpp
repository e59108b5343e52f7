#include "rla/engine/optim.h"

#include <unordered_set>

#include <fmt/format.h>

namespace rla::engine {
namespace {

bool is_norm_layer(const torch::nn::Module& m) {
  return m.as<models::BatchNorm2dImpl>() != nullptr || m.as<torch::nn::BatchNorm2dImpl>() != nullptr ||
         m.as<torch::nn::BatchNorm1dImpl>() != nullptr || m.as<torch::nn::GroupNormImpl>() != nullptr ||
         m.as<torch::nn::LayerNormImpl>() != nullptr;
}

double no_decay_value(const OptimizerConfig& c) {
  return c.norm_weight_decay < 0 ? c.weight_decay : c.norm_weight_decay;
}

// The options of one group (the optimiser's kind) with weight decay `wd`.
std::unique_ptr<torch::optim::OptimizerOptions> group_options(const OptimizerConfig& c, double wd) {
  if (c.kind == "adamw")
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(c.lr)
                                                            .betas(std::make_tuple(c.beta1, c.beta2))
                                                            .eps(c.eps)
                                                            .weight_decay(wd));
  if (c.kind == "rmsprop")
    return std::make_unique<torch::optim::RMSpropOptions>(
        torch::optim::RMSpropOptions(c.lr).alpha(c.alpha).eps(c.eps).weight_decay(wd).momentum(c.momentum));
  return std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(c.lr)
                                                        .momentum(c.momentum)
                                                        .nesterov(c.nesterov && c.momentum > 0)
                                                        .weight_decay(wd));
}

template <typename Optimizer, typename Options>
std::unique_ptr<torch::optim::Optimizer> build(std::vector<torch::optim::OptimizerParamGroup> groups,
                                               const OptimizerConfig& c) {
  auto defaults = group_options(c, c.weight_decay);
  return std::make_unique<Optimizer>(std::move(groups), static_cast<Options&>(*defaults));
}

}  // namespace

std::vector<std::string> optimizer_names() {
  return {"sgd", "adamw", "rmsprop"};
}

void validate_optimizer(const OptimizerConfig& c) {
  const auto names = optimizer_names();
  if (std::find(names.begin(), names.end(), c.kind) == names.end())
    throw std::invalid_argument(
        fmt::format("--optimizer: unknown '{}' (expected one of: {})", c.kind, fmt::join(names, ", ")));
  if (!(c.lr > 0)) throw std::invalid_argument(fmt::format("--lr must be positive, got {}", c.lr));
  if (!(c.momentum >= 0 && c.momentum < 1))
    throw std::invalid_argument(fmt::format("--momentum must be in [0, 1), got {}", c.momentum));
  if (!(c.weight_decay >= 0))
    throw std::invalid_argument(fmt::format("--wd must be >= 0, got {}", c.weight_decay));
  if (c.norm_weight_decay < 0 && c.norm_weight_decay != -1.0)
    throw std::invalid_argument(fmt::format("--norm-weight-decay must be >= 0, got {}", c.norm_weight_decay));
  if (!(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1))
    throw std::invalid_argument(fmt::format("--betas must be in [0, 1), got {},{}", c.beta1, c.beta2));
  if (!(c.alpha > 0 && c.alpha < 1))
    throw std::invalid_argument(fmt::format("--rmsprop-alpha must be in (0, 1), got {}", c.alpha));
  if (!(c.eps > 0)) throw std::invalid_argument(fmt::format("--opt-eps must be positive, got {}", c.eps));
}

ParameterGroups split_for_weight_decay(const torch::nn::Module& module) {
  ParameterGroups g;
  std::unordered_set<const void*> no_decay;
  for (const auto& item : module.named_modules("", /*include_self=*/true)) {
    const bool norm = is_norm_layer(*item.value());
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false)) {
      const auto& name = p.key();
      const bool bias = name == "bias" || (name.size() > 5 && name.compare(name.size() - 5, 5, "_bias") == 0);
      if (norm || bias) no_decay.insert(p.value().unsafeGetTensorImpl());
    }
  }
  for (const auto& p : models::unique_parameters(module)) {
    if (!p.requires_grad()) continue;
    g.all.push_back(p);
    (no_decay.count(p.unsafeGetTensorImpl()) ? g.no_decay : g.decay).push_back(p);
  }
  return g;
}

void append_groups(ParameterGroups& groups, const ParameterGroups& more) {
  std::unordered_set<const void*> seen;
  for (const auto& p : groups.all) seen.insert(p.unsafeGetTensorImpl());
  for (const auto& p : more.all) {
    if (!seen.insert(p.unsafeGetTensorImpl()).second) continue;
    groups.all.push_back(p);
    const bool nd = std::any_of(more.no_decay.begin(), more.no_decay.end(),
                                [&](const torch::Tensor& t) { return t.is_same(p); });
    (nd ? groups.no_decay : groups.decay).push_back(p);
  }
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerConfig& c, const ParameterGroups& g) {
  validate_optimizer(c);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  const double nd = no_decay_value(c);
  if (nd == c.weight_decay) {
    groups.emplace_back(g.all, group_options(c, c.weight_decay));
  } else {
    if (!g.decay.empty()) groups.emplace_back(g.decay, group_options(c, c.weight_decay));
    if (!g.no_decay.empty()) groups.emplace_back(g.no_decay, group_options(c, nd));
  }
  if (c.kind == "adamw") return build<torch::optim::AdamW, torch::optim::AdamWOptions>(std::move(groups), c);
  if (c.kind == "rmsprop")
    return build<torch::optim::RMSprop, torch::optim::RMSpropOptions>(std::move(groups), c);
  return build<torch::optim::SGD, torch::optim::SGDOptions>(std::move(groups), c);
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

WeightAverage::WeightAverage(const models::NetworkImpl& net, double decay, int64_t every)
    : average_(net.copy()), decay_(decay), every_(every) {
  if (!(decay >= 0 && decay < 1))
    throw std::invalid_argument(fmt::format("weight average: the decay must be in [0, 1), got {}", decay));
  if (every < 1) throw std::invalid_argument(fmt::format("--ema-steps must be >= 1, got {}", every));
  for (auto& p : average_->parameters()) p.set_requires_grad(false);
  average_->eval();
}

void WeightAverage::reset(const models::NetworkImpl& net) {
  blend(net, 0.0);
}

void WeightAverage::update(const models::NetworkImpl& net, int64_t step) {
  if (step % every_ == 0) blend(net, decay_);
}

void WeightAverage::blend(const models::NetworkImpl& net, double keep) {
  torch::NoGradGuard no_grad;
  const auto src = models::state_dict(net), dst = models::state_dict(*average_);
  std::unordered_set<const void*> seen;  // shared modules appear under several names: once each
  for (size_t i = 0; i < src.size(); ++i) {
    auto avg = dst[i].second;
    if (!seen.insert(avg.unsafeGetTensorImpl()).second) continue;
    const auto& w = src[i].second;
    if (avg.is_floating_point() && keep > 0.0) {
      avg.mul_(keep).add_(w.detach(), 1.0 - keep);
    } else {
      avg.copy_(w);  // a restart, or an integer buffer (e.g. num_batches_tracked)
    }
  }
}

}  // namespace rla::engine
