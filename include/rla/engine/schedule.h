#pragma once
// Learning-rate schedules, evaluated at a fractional epoch so the rate can change every step.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace rla::engine {

enum class ScheduleKind { kConstant, kStep, kMultistep, kCosine };
/// "constant" | "step" | "multistep" | "cosine"; throws util::FieldError("schedule") otherwise.
ScheduleKind parse_schedule_kind(const std::string& name);
std::string to_string(ScheduleKind kind);
std::vector<std::string> schedule_names();
void to_json(nlohmann::json& j, ScheduleKind kind);  ///< its name
void from_json(const nlohmann::json& j, ScheduleKind& kind);

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::kCosine;
  double base_lr = 0.1;
  double epochs = 1;                ///< schedule length in epochs (cosine), set by the trainer from the
                                    ///< run's epochs; fractional when fitted to a time budget
  int64_t step_size = 30;           ///< step: decay every step_size epochs
  std::vector<int64_t> milestones;  ///< multistep: decay at these epochs
  double gamma = 0.1;               ///< step / multistep decay factor
  double warmup_epochs = 0;         ///< linear warm-up from warmup_start * base_lr
  double warmup_start = 0.1;
  double min_lr = 0.0;  ///< cosine floor

  /// The options with their config.json keys (util/json_fields.h). `epochs` is the trainer's;
  /// warmup_start and min_lr are fixed.
  template <typename Self, typename Visit>
  static void visit_fields(Self& self, Visit&& visit) {
    visit("lr", self.base_lr);
    visit("schedule", self.kind);
    visit("milestones", self.milestones);
    visit("step_size", self.step_size);
    visit("gamma", self.gamma);
    visit("warmup_epochs", self.warmup_epochs);
  }
};

/// Learning rate at `epoch` (0-based, fractional: 2.5 = half-way through the third epoch).
double lr_at(const ScheduleConfig& config, double epoch);
/// Throws util::FieldError naming the field ("lr", "step_size", "warmup_epochs") of a value out
/// of range.
void validate_schedule(const ScheduleConfig& config);

}  // namespace rla::engine
