#include "rla/engine/train_config.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/cuda.h>

#include "rla/util/json_fields.h"

namespace rla::engine {
namespace {

using util::FieldError;

// j[key] when present and not null; a value of the wrong type names the key.
template <typename T>
std::optional<T> get_optional(const nlohmann::json& j, const char* key) {
  std::optional<T> value;
  util::JsonReader read(j);
  read(key, value);
  return value;
}

// Configurations written before model_config existed kept k and the aggregation at the top level.
models::ModelConfig top_level_model_config(const nlohmann::json& j) {
  models::ModelConfig c;
  if (const auto k = get_optional<int64_t>(j, "rla_channels"); k && *k > 0) c.rla_channels = *k;
  if (const auto a = get_optional<std::string>(j, "aggregation"); a && !a->empty())
    c.aggregation = models::parse_aggregation(*a);
  return c;
}

}  // namespace

nlohmann::json to_json(const models::ModelConfig& c) {
  nlohmann::json j = nlohmann::json::object();
  if (c.num_classes) j["num_classes"] = *c.num_classes;
  if (c.in_channels) j["in_channels"] = *c.in_channels;
  if (c.rla_channels) j["rla_channels"] = *c.rla_channels;
  if (c.aggregation) j["aggregation"] = models::to_string(*c.aggregation);
  if (c.zero_init_residual) j["zero_init_residual"] = *c.zero_init_residual;
  if (c.state_input) j["state_input"] = models::to_string(*c.state_input);
  return j;
}

models::ModelConfig model_config_from_json(const nlohmann::json& j) {
  models::ModelConfig c;
  c.num_classes = get_optional<int64_t>(j, "num_classes");
  c.in_channels = get_optional<int64_t>(j, "in_channels");
  c.rla_channels = get_optional<int64_t>(j, "rla_channels");
  c.zero_init_residual = get_optional<bool>(j, "zero_init_residual");
  try {
    if (auto a = get_optional<std::string>(j, "aggregation")) c.aggregation = models::parse_aggregation(*a);
  } catch (const std::invalid_argument& e) {
    throw FieldError("aggregation", std::string("aggregation: ") + e.what());
  }
  try {
    if (auto s = get_optional<std::string>(j, "state_input")) c.state_input = models::parse_state_input(*s);
  } catch (const std::invalid_argument& e) {
    throw FieldError("state_input", std::string("state_input: ") + e.what());
  }
  return c;
}

nlohmann::json to_json(const TrainConfig& c) {
  nlohmann::json j = nlohmann::json::object();
  TrainConfig::visit_fields(c, util::JsonWriter(j));
  j["model_config"] = to_json(c.model_config);
  return j;
}

void update_train_config(TrainConfig& c, const nlohmann::json& j) {
  TrainConfig::visit_fields(c, util::JsonReader(j));
  c.data.seed = c.run.seed;
}

TrainConfig train_config_from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("model"))
    throw std::invalid_argument("not a training configuration (no \"model\" key)");
  TrainConfig c;
  update_train_config(c, j);
  c.model_config =
      j.contains("model_config") ? model_config_from_json(j["model_config"]) : top_level_model_config(j);
  return c;
}

c10::Device parse_device(const std::string& name) {
  std::optional<c10::Device> d;
  try {
    d = c10::Device(name);
  } catch (const c10::Error&) {
    throw FieldError("device", fmt::format("device: '{}' is not a device (cpu, cuda or cuda:N)", name));
  }
  if (d->is_cuda()) {
    if (!torch::cuda::is_available())
      throw FieldError(
          "device", fmt::format("device {}: no CUDA device (this LibTorch build or machine has none)", name));
    if (d->has_index() && d->index() >= static_cast<int>(torch::cuda::device_count()))
      throw FieldError("device",
                       fmt::format("device {}: only {} CUDA devices", name, torch::cuda::device_count()));
  } else if (!d->is_cpu()) {
    throw FieldError("device", fmt::format("device: '{}' is not supported (cpu or cuda)", name));
  }
  return *d;
}

void validate_regularization(const RegularizationConfig& c) {
  if (!(c.label_smoothing >= 0 && c.label_smoothing < 1))
    throw FieldError("label_smoothing",
                     fmt::format("label_smoothing must be in [0, 1), got {}", c.label_smoothing));
  if (c.ema_decay != 0) {
    if (!(c.ema_decay > 0 && c.ema_decay < 1))
      throw FieldError("ema_decay", fmt::format("ema_decay must be in (0, 1) (0: off), got {}", c.ema_decay));
    if (c.ema_steps < 1)
      throw FieldError("ema_steps", fmt::format("ema_steps must be >= 1, got {}", c.ema_steps));
  }
  if (!(c.mixup_alpha >= 0 && c.cutmix_alpha >= 0))
    throw FieldError({"mixup_alpha", "cutmix_alpha"},
                     fmt::format("mixup_alpha / cutmix_alpha must be >= 0 (0: off), got {} / {}",
                                 c.mixup_alpha, c.cutmix_alpha));
  if (!c.mixing()) return;
  if (!(c.mix_prob > 0 && c.mix_prob <= 1))
    throw FieldError("mix_prob", fmt::format("mix_prob must be in (0, 1], got {}", c.mix_prob));
  if (!(c.mix_switch_prob >= 0 && c.mix_switch_prob <= 1))
    throw FieldError("mix_switch_prob",
                     fmt::format("mix_switch_prob must be in [0, 1], got {}", c.mix_switch_prob));
}

void validate_exits(const ExitConfig& c) {
  if (c.projection < 0)
    throw FieldError("exit_projection", fmt::format("exit_projection must be >= 0, got {}", c.projection));
  if (c.enabled() && !c.freeze_backbone && !(c.weight >= 0))
    throw FieldError("exit_weight", fmt::format("exit_weight must be >= 0, got {}", c.weight));
}

void validate_run(const RunConfig& c) {
  if (c.epochs <= 0) throw FieldError("epochs", fmt::format("epochs must be positive, got {}", c.epochs));
  if (!(c.time_budget_minutes >= 0 && std::isfinite(c.time_budget_minutes)))
    throw FieldError("time_budget_minutes",
                     fmt::format("time_budget_minutes must be a positive number of minutes (0: none), got {}",
                                 c.time_budget_minutes));
  if (c.batch_size <= 0)
    throw FieldError("batch_size", fmt::format("batch_size must be positive, got {}", c.batch_size));
  // A thread per worker: beyond a few per core they only wait (and tens of thousands hang the start).
  if (c.workers < 0 || c.workers > kMaxWorkers)
    throw FieldError("workers",
                     fmt::format("workers must be in [0, {}] (0: load on the training thread), got {}",
                                 kMaxWorkers, c.workers));
  parse_device(c.device);
}

void validate_train_config(const TrainConfig& c) {
  validate_run(c.run);
  validate_schedule(c.schedule);
  validate_optimizer(c.optimizer);
  data::validate_data(c.data);
  validate_regularization(c.regularization);
  validate_exits(c.exits);
  if (c.regularization.mixing()) {
    if (c.exits.enabled())
      throw FieldError(
          {"mixup_alpha", "cutmix_alpha", "exits"},
          "mixup_alpha / cutmix_alpha cannot train exit heads (exits): their losses use hard labels");
    if (!c.data.augment)
      throw FieldError({"augment", "mixup_alpha", "cutmix_alpha"},
                       "augment = false contradicts mixup_alpha / cutmix_alpha");
  }
  if (c.exits.freeze_backbone && (!c.exits.enabled() || c.run.init_checkpoint.empty()))
    throw FieldError({"freeze_backbone", "exits", "init_checkpoint"},
                     "freeze_backbone trains exit heads post hoc: it needs exits and init_checkpoint");
}

}  // namespace rla::engine
