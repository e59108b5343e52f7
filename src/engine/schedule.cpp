#include "rla/engine/schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace rla::engine {

void validate_schedule(const ScheduleConfig& c) {
  if (c.kind != "constant" && c.kind != "step" && c.kind != "multistep" && c.kind != "cosine")
    throw std::invalid_argument("unknown --schedule '" + c.kind +
                                "' (expected constant, step, multistep or cosine)");
  if (!(c.base_lr > 0)) throw std::invalid_argument("--lr must be positive");
  if (c.kind == "step" && c.step_size <= 0) throw std::invalid_argument("--step-size must be positive");
  if (c.warmup_epochs < 0) throw std::invalid_argument("--warmup-epochs must be >= 0");
}

double lr_at(const ScheduleConfig& c, double epoch) {
  double lr = c.base_lr;
  if (c.kind == "step") {
    lr *= std::pow(c.gamma, std::floor(epoch / static_cast<double>(c.step_size)));
  } else if (c.kind == "multistep") {
    for (auto m : c.milestones)
      if (epoch >= static_cast<double>(m)) lr *= c.gamma;
  } else if (c.kind == "cosine") {
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
