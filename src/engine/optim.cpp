#include "rla/engine/optim.h"

#include <unordered_set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "rla/util/json_fields.h"

namespace rla::engine {
namespace {

constexpr util::EnumNames<OptimizerKind, 3> kOptimizerNames{
    "optimizer",
    {{{OptimizerKind::kSgd, "sgd"}, {OptimizerKind::kAdamW, "adamw"}, {OptimizerKind::kRmsprop, "rmsprop"}}}};

bool is_norm_layer(const torch::nn::Module& m) {
  return m.as<models::BatchNorm2dImpl>() != nullptr || m.as<torch::nn::BatchNorm2dImpl>() != nullptr ||
         m.as<torch::nn::BatchNorm1dImpl>() != nullptr || m.as<torch::nn::GroupNormImpl>() != nullptr ||
         m.as<torch::nn::LayerNormImpl>() != nullptr;
}

double no_decay_value(const OptimizerConfig& c) {
  return c.norm_weight_decay < 0 ? c.weight_decay : c.norm_weight_decay;
}

// The options of one group (the optimiser's kind) with weight decay `wd`.
std::unique_ptr<torch::optim::OptimizerOptions> group_options(const OptimizerConfig& c, double lr,
                                                              double wd) {
  switch (c.kind) {
    case OptimizerKind::kAdamW:
      return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(lr)
                                                              .betas(std::make_tuple(c.betas[0], c.betas[1]))
                                                              .eps(c.eps)
                                                              .weight_decay(wd));
    case OptimizerKind::kRmsprop:
      return std::make_unique<torch::optim::RMSpropOptions>(torch::optim::RMSpropOptions(lr)
                                                                .alpha(c.rmsprop_alpha)
                                                                .eps(c.eps)
                                                                .weight_decay(wd)
                                                                .momentum(c.momentum));
    case OptimizerKind::kSgd:
      break;
  }
  return std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(lr)
                                                        .momentum(c.momentum)
                                                        .nesterov(c.nesterov && c.momentum > 0)
                                                        .weight_decay(wd));
}

template <typename Optimizer, typename Options>
std::unique_ptr<torch::optim::Optimizer> build(std::vector<torch::optim::OptimizerParamGroup> groups,
                                               const OptimizerConfig& c, double lr) {
  auto defaults = group_options(c, lr, c.weight_decay);
  return std::make_unique<Optimizer>(std::move(groups), static_cast<Options&>(*defaults));
}

}  // namespace

OptimizerKind parse_optimizer_kind(const std::string& name) {
  return kOptimizerNames.parse(name);
}

std::string to_string(OptimizerKind kind) {
  return kOptimizerNames.name(kind);
}

std::vector<std::string> optimizer_names() {
  return kOptimizerNames.all();
}

void to_json(nlohmann::json& j, OptimizerKind kind) {
  j = to_string(kind);
}

void from_json(const nlohmann::json& j, OptimizerKind& kind) {
  kind = parse_optimizer_kind(j.get<std::string>());
}

void validate_optimizer(const OptimizerConfig& c) {
  using util::FieldError;
  if (!(c.momentum >= 0 && c.momentum < 1))
    throw FieldError("momentum", fmt::format("momentum must be in [0, 1), got {}", c.momentum));
  if (!(c.weight_decay >= 0))
    throw FieldError("weight_decay", fmt::format("weight_decay must be >= 0, got {}", c.weight_decay));
  if (c.norm_weight_decay < 0 && c.norm_weight_decay != -1.0)
    throw FieldError("norm_weight_decay",
                     fmt::format("norm_weight_decay must be >= 0, got {}", c.norm_weight_decay));
  const auto [b1, b2] = c.betas;
  if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1))
    throw FieldError("betas", fmt::format("betas must be in [0, 1), got {},{}", b1, b2));
  if (!(c.rmsprop_alpha > 0 && c.rmsprop_alpha < 1))
    throw FieldError("rmsprop_alpha",
                     fmt::format("rmsprop_alpha must be in (0, 1), got {}", c.rmsprop_alpha));
  if (!(c.eps > 0)) throw FieldError("opt_eps", fmt::format("opt_eps must be positive, got {}", c.eps));
  if (!(c.grad_clip >= 0))
    throw FieldError("grad_clip", fmt::format("grad_clip must be >= 0, got {}", c.grad_clip));
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

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerConfig& c, const ParameterGroups& g,
                                                        double lr) {
  validate_optimizer(c);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  const double nd = no_decay_value(c);
  if (nd == c.weight_decay) {
    groups.emplace_back(g.all, group_options(c, lr, c.weight_decay));
  } else {
    if (!g.decay.empty()) groups.emplace_back(g.decay, group_options(c, lr, c.weight_decay));
    if (!g.no_decay.empty()) groups.emplace_back(g.no_decay, group_options(c, lr, nd));
  }
  switch (c.kind) {
    case OptimizerKind::kAdamW:
      return build<torch::optim::AdamW, torch::optim::AdamWOptions>(std::move(groups), c, lr);
    case OptimizerKind::kRmsprop:
      return build<torch::optim::RMSprop, torch::optim::RMSpropOptions>(std::move(groups), c, lr);
    case OptimizerKind::kSgd:
      break;
  }
  return build<torch::optim::SGD, torch::optim::SGDOptions>(std::move(groups), c, lr);
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

WeightAverage::WeightAverage(const models::NetworkImpl& net, double decay, int64_t every)
    : average_(net.copy()), decay_(decay), every_(every) {
  if (!(decay >= 0 && decay < 1))
    throw std::invalid_argument(fmt::format("weight average: the decay must be in [0, 1), got {}", decay));
  if (every < 1) throw util::FieldError("ema_steps", fmt::format("ema_steps must be >= 1, got {}", every));
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
