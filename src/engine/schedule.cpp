#include "rla/engine/schedule.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "rla/util/json_fields.h"

namespace rla::engine {
namespace {

constexpr util::EnumNames<ScheduleKind, 4> kScheduleNames{"schedule",
                                                          {{{ScheduleKind::kConstant, "constant"},
                                                            {ScheduleKind::kStep, "step"},
                                                            {ScheduleKind::kMultistep, "multistep"},
                                                            {ScheduleKind::kCosine, "cosine"}}}};

}  // namespace

ScheduleKind parse_schedule_kind(const std::string& name) {
  return kScheduleNames.parse(name);
}

std::string to_string(ScheduleKind kind) {
  return kScheduleNames.name(kind);
}

std::vector<std::string> schedule_names() {
  return kScheduleNames.all();
}

void to_json(nlohmann::json& j, ScheduleKind kind) {
  j = to_string(kind);
}

void from_json(const nlohmann::json& j, ScheduleKind& kind) {
  kind = parse_schedule_kind(j.get<std::string>());
}

void validate_schedule(const ScheduleConfig& c) {
  if (!(c.base_lr > 0)) throw util::FieldError("lr", fmt::format("lr must be positive, got {}", c.base_lr));
  if (c.kind == ScheduleKind::kStep && c.step_size <= 0)
    throw util::FieldError("step_size", fmt::format("step_size must be positive, got {}", c.step_size));
  if ((c.kind == ScheduleKind::kStep || c.kind == ScheduleKind::kMultistep) && !(c.gamma > 0))
    throw util::FieldError("gamma", fmt::format("gamma must be positive, got {}", c.gamma));
  if (c.kind == ScheduleKind::kMultistep)
    for (size_t i = 0; i < c.milestones.size(); ++i)
      if (c.milestones[i] <= 0 || (i > 0 && c.milestones[i] <= c.milestones[i - 1]))
        throw util::FieldError("milestones",
                               fmt::format("milestones must be positive epochs in increasing order, got {}",
                                           fmt::join(c.milestones, ",")));
  if (!(c.warmup_epochs >= 0))
    throw util::FieldError("warmup_epochs",
                           fmt::format("warmup_epochs must be >= 0, got {}", c.warmup_epochs));
}

double lr_at(const ScheduleConfig& c, double epoch) {
  double lr = c.base_lr;
  if (c.kind == ScheduleKind::kStep) {
    lr *= std::pow(c.gamma, std::floor(epoch / static_cast<double>(c.step_size)));
  } else if (c.kind == ScheduleKind::kMultistep) {
    for (auto m : c.milestones)
      if (epoch >= static_cast<double>(m)) lr *= c.gamma;
  } else if (c.kind == ScheduleKind::kCosine) {
    const double t = std::clamp(epoch / std::max(1e-9, c.epochs), 0.0, 1.0);
    lr = c.min_lr + 0.5 * (c.base_lr - c.min_lr) * (1.0 + std::cos(M_PI * t));
  }
  if (epoch < c.warmup_epochs) {
    const double f = c.warmup_start + (1.0 - c.warmup_start) * (epoch / c.warmup_epochs);
    lr *= f;
  }
  return lr;
}

}  // namespace rla::engine
