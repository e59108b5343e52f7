#pragma once
// Learning-rate schedules, evaluated at a fractional epoch so the rate can change every step.
#include <string>
#include <vector>

namespace rla::engine {

struct ScheduleConfig {
  std::string kind = "cosine";  ///< constant | step | multistep | cosine
  double base_lr = 0.1;
  double epochs = 1;                ///< schedule length in epochs (cosine); fractional when fitted
                                    ///< to a time budget (TrainConfig::time_budget_minutes)
  int64_t step_size = 30;           ///< step: decay every step_size epochs
  std::vector<int64_t> milestones;  ///< multistep: decay at these epochs
  double gamma = 0.1;               ///< step / multistep decay factor
  double warmup_epochs = 0;         ///< linear warm-up from warmup_start * base_lr
  double warmup_start = 0.1;
  double min_lr = 0.0;  ///< cosine floor
};

/// Learning rate at `epoch` (0-based, fractional: 2.5 = half-way through the third epoch).
double lr_at(const ScheduleConfig& config, double epoch);
/// Throws std::invalid_argument for an unknown kind or inconsistent values.
void validate_schedule(const ScheduleConfig& config);

}  // namespace rla::engine
