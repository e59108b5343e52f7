#include "rla/engine/run.h"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "rla/engine/checkpoint.h"

namespace rla::engine {
namespace {

namespace fs = std::filesystem;

// j[key] as T when present, else `fallback`; a value of the wrong type names the key.
template <typename T>
T get_or(const nlohmann::json& j, const char* key, T fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  try {
    return j[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    throw std::invalid_argument(fmt::format("config key '{}' has the wrong type ({})", key, j[key].dump()));
  }
}

template <typename T>
std::optional<T> get_optional(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return get_or<T>(j, key, T{});
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
  if (auto a = get_optional<std::string>(j, "aggregation")) c.aggregation = models::parse_aggregation(*a);
  c.zero_init_residual = get_optional<bool>(j, "zero_init_residual");
  if (auto s = get_optional<std::string>(j, "state_input")) c.state_input = models::parse_state_input(*s);
  return c;
}

nlohmann::json to_json(const TrainConfig& c) {
  return {{"model", c.model},
          {"model_config", to_json(c.model_config)},
          {"dataset", c.data.dataset},
          {"data_root", c.data.root},
          {"limit_train", c.data.limit_train},
          {"limit_test", c.data.limit_test},
          {"val_size", c.data.val_size},
          {"val_seed", c.data.val_seed},
          {"augment", c.data.augment},
          {"image_size", c.data.image_size},
          {"synthetic_size", c.data.synthetic_size},
          {"epochs", c.epochs},
          {"time_budget_minutes", c.time_budget_minutes},
          {"batch_size", c.batch_size},
          {"lr", c.schedule.base_lr},
          {"schedule", c.schedule.kind},
          {"milestones", c.schedule.milestones},
          {"step_size", c.schedule.step_size},
          {"gamma", c.schedule.gamma},
          {"warmup_epochs", c.schedule.warmup_epochs},
          {"auto_augment", c.data.auto_augment},
          {"randaugment_ops", c.data.randaugment_ops},
          {"randaugment_magnitude", c.data.randaugment_magnitude},
          {"random_erasing", c.data.random_erasing},
          {"optimizer", c.optimizer},
          {"momentum", c.momentum},
          {"nesterov", c.nesterov},
          {"weight_decay", c.weight_decay},
          {"norm_weight_decay", c.norm_weight_decay},
          {"betas", {c.beta1, c.beta2}},
          {"rmsprop_alpha", c.rmsprop_alpha},
          {"opt_eps", c.opt_eps},
          {"grad_clip", c.grad_clip},
          {"label_smoothing", c.label_smoothing},
          {"ema_decay", c.ema_decay},
          {"ema_steps", c.ema_steps},
          {"mixup_alpha", c.mixup_alpha},
          {"cutmix_alpha", c.cutmix_alpha},
          {"mix_prob", c.mix_prob},
          {"mix_switch_prob", c.mix_switch_prob},
          {"recipe", c.recipe},
          {"seed", c.seed},
          {"device", c.device},
          {"threads", c.threads},
          {"workers", c.workers},
          {"channels_last", c.channels_last},
          {"out_dir", c.out_dir},
          {"init_checkpoint", c.init_checkpoint},
          {"exits", c.exits},
          {"exit_input", c.exit_input},
          {"exit_weight", c.exit_weight},
          {"exit_projection", c.exit_projection},
          {"freeze_backbone", c.freeze_backbone},
          {"freeze_bn", c.freeze_bn},
          {"input_shape", c.input_shape},
          {"input_mean", c.input_mean},
          {"input_std", c.input_std},
          {"class_names", c.class_names}};
}

TrainConfig train_config_from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("model"))
    throw std::invalid_argument("not a training configuration (no \"model\" key)");
  TrainConfig c;
  c.model = get_or<std::string>(j, "model", c.model);
  if (j.contains("model_config")) {
    c.model_config = model_config_from_json(j["model_config"]);
  } else {  // configs written before model_config existed: k and aggregation at the top level
    if (get_or<int64_t>(j, "rla_channels", 0) > 0)
      c.model_config.rla_channels = j["rla_channels"].get<int64_t>();
    const auto agg = get_or<std::string>(j, "aggregation", "");
    if (!agg.empty()) c.model_config.aggregation = models::parse_aggregation(agg);
  }
  auto& d = c.data;
  d.dataset = get_or(j, "dataset", d.dataset);
  d.root = get_or(j, "data_root", d.root);
  d.limit_train = get_or(j, "limit_train", d.limit_train);
  d.limit_test = get_or(j, "limit_test", d.limit_test);
  d.val_size = get_or(j, "val_size", d.val_size);
  d.val_seed = get_or(j, "val_seed", d.val_seed);
  d.augment = get_or(j, "augment", d.augment);
  d.image_size = get_or(j, "image_size", d.image_size);
  d.synthetic_size = get_or(j, "synthetic_size", d.synthetic_size);
  c.epochs = get_or(j, "epochs", c.epochs);
  c.time_budget_minutes = get_or(j, "time_budget_minutes", c.time_budget_minutes);
  c.batch_size = get_or(j, "batch_size", c.batch_size);
  auto& s = c.schedule;
  s.base_lr = get_or(j, "lr", s.base_lr);
  s.kind = get_or(j, "schedule", s.kind);
  s.milestones = get_or(j, "milestones", s.milestones);
  s.step_size = get_or(j, "step_size", s.step_size);
  s.gamma = get_or(j, "gamma", s.gamma);
  s.warmup_epochs = get_or(j, "warmup_epochs", s.warmup_epochs);
  d.auto_augment = get_or(j, "auto_augment", d.auto_augment);
  d.randaugment_ops = get_or(j, "randaugment_ops", d.randaugment_ops);
  d.randaugment_magnitude = get_or(j, "randaugment_magnitude", d.randaugment_magnitude);
  d.random_erasing = get_or(j, "random_erasing", d.random_erasing);
  c.optimizer = get_or(j, "optimizer", c.optimizer);
  c.momentum = get_or(j, "momentum", c.momentum);
  c.nesterov = get_or(j, "nesterov", c.nesterov);
  c.weight_decay = get_or(j, "weight_decay", c.weight_decay);
  c.norm_weight_decay = get_or(j, "norm_weight_decay", c.norm_weight_decay);
  const auto betas = get_or(j, "betas", std::vector<double>{c.beta1, c.beta2});
  if (betas.size() != 2) throw std::invalid_argument("config key 'betas' must hold two numbers");
  c.beta1 = betas[0], c.beta2 = betas[1];
  c.rmsprop_alpha = get_or(j, "rmsprop_alpha", c.rmsprop_alpha);
  c.opt_eps = get_or(j, "opt_eps", c.opt_eps);
  c.grad_clip = get_or(j, "grad_clip", c.grad_clip);
  c.label_smoothing = get_or(j, "label_smoothing", c.label_smoothing);
  c.ema_decay = get_or(j, "ema_decay", c.ema_decay);
  c.ema_steps = get_or(j, "ema_steps", c.ema_steps);
  c.mixup_alpha = get_or(j, "mixup_alpha", c.mixup_alpha);
  c.cutmix_alpha = get_or(j, "cutmix_alpha", c.cutmix_alpha);
  c.mix_prob = get_or(j, "mix_prob", c.mix_prob);
  c.mix_switch_prob = get_or(j, "mix_switch_prob", c.mix_switch_prob);
  c.recipe = get_or(j, "recipe", c.recipe);
  c.seed = get_or(j, "seed", c.seed);
  d.seed = c.seed;
  c.device = get_or(j, "device", c.device);
  c.threads = get_or(j, "threads", c.threads);
  c.workers = get_or(j, "workers", c.workers);
  c.channels_last = get_or(j, "channels_last", c.channels_last);
  c.out_dir = get_or(j, "out_dir", c.out_dir);
  c.init_checkpoint = get_or(j, "init_checkpoint", c.init_checkpoint);
  c.exits = get_or(j, "exits", c.exits);
  c.exit_input = get_or(j, "exit_input", c.exit_input);
  c.exit_weight = get_or(j, "exit_weight", c.exit_weight);
  c.exit_projection = get_or(j, "exit_projection", c.exit_projection);
  c.freeze_bn = get_or(j, "freeze_bn", c.freeze_bn);
  c.freeze_backbone = get_or(j, "freeze_backbone", c.freeze_backbone);
  c.input_shape = get_or(j, "input_shape", c.input_shape);
  c.input_mean = get_or(j, "input_mean", c.input_mean);
  c.input_std = get_or(j, "input_std", c.input_std);
  c.class_names = get_or(j, "class_names", c.class_names);
  return c;
}

nlohmann::json to_json(const EpochMetrics& m) {
  nlohmann::json j = {{"epoch", m.epoch},           {"lr", m.lr},
                      {"train_loss", m.train_loss}, {"train_top1", m.train_top1},
                      {"train_top5", m.train_top5}, {"val_loss", m.val_loss},
                      {"val_top1", m.val_top1},     {"val_top5", m.val_top5},
                      {"seconds", m.seconds},       {"train_img_per_s", m.train_img_per_s}};
  if (m.ema_val_top1) {
    j["ema_val_loss"] = *m.ema_val_loss;
    j["ema_val_top1"] = *m.ema_val_top1;
    j["ema_val_top5"] = *m.ema_val_top5;
  }
  return j;
}

EpochMetrics epoch_metrics_from_json(const nlohmann::json& j) {
  EpochMetrics m;
  m.epoch = get_or(j, "epoch", m.epoch);
  m.lr = get_or(j, "lr", m.lr);
  m.train_loss = get_or(j, "train_loss", m.train_loss);
  m.train_top1 = get_or(j, "train_top1", m.train_top1);
  m.train_top5 = get_or(j, "train_top5", m.train_top5);
  m.val_loss = get_or(j, "val_loss", m.val_loss);
  m.val_top1 = get_or(j, "val_top1", m.val_top1);
  m.val_top5 = get_or(j, "val_top5", m.val_top5);
  m.seconds = get_or(j, "seconds", m.seconds);
  m.train_img_per_s = get_or(j, "train_img_per_s", m.train_img_per_s);
  m.ema_val_loss = get_optional<double>(j, "ema_val_loss");
  m.ema_val_top1 = get_optional<double>(j, "ema_val_top1");
  m.ema_val_top5 = get_optional<double>(j, "ema_val_top5");
  return m;
}

nlohmann::json to_json(const RunResult& r) {
  nlohmann::json j = {{"epochs", r.epochs},
                      {"test_loss", r.test_loss},
                      {"test_top1", r.test_top1},
                      {"test_top5", r.test_top5}};
  if (r.val_top1) {
    j["val_loss"] = *r.val_loss;
    j["val_top1"] = *r.val_top1;
    j["val_top5"] = *r.val_top5;
  }
  const std::pair<const char*, const std::optional<double>*> ema[] = {
      {"ema_val_loss", &r.ema_val_loss},   {"ema_val_top1", &r.ema_val_top1},
      {"ema_val_top5", &r.ema_val_top5},   {"ema_test_loss", &r.ema_test_loss},
      {"ema_test_top1", &r.ema_test_top1}, {"ema_test_top5", &r.ema_test_top5}};
  for (const auto& [key, value] : ema)
    if (*value) j[key] = **value;
  if (r.fitted_epochs) j["fitted_epochs"] = *r.fitted_epochs;
  return j;
}

RunResult run_result_from_json(const nlohmann::json& j) {
  RunResult r;
  r.epochs = get_or(j, "epochs", r.epochs);
  r.val_loss = get_optional<double>(j, "val_loss");
  r.val_top1 = get_optional<double>(j, "val_top1");
  r.val_top5 = get_optional<double>(j, "val_top5");
  r.test_loss = get_or(j, "test_loss", r.test_loss);
  r.test_top1 = get_or(j, "test_top1", r.test_top1);
  r.test_top5 = get_or(j, "test_top5", r.test_top5);
  r.ema_val_loss = get_optional<double>(j, "ema_val_loss");
  r.ema_val_top1 = get_optional<double>(j, "ema_val_top1");
  r.ema_val_top5 = get_optional<double>(j, "ema_val_top5");
  r.ema_test_loss = get_optional<double>(j, "ema_test_loss");
  r.ema_test_top1 = get_optional<double>(j, "ema_test_top1");
  r.ema_test_top5 = get_optional<double>(j, "ema_test_top5");
  r.fitted_epochs = get_optional<double>(j, "fitted_epochs");
  return r;
}

std::string config_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "config.json").string();
}
std::string metrics_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "metrics.jsonl").string();
}
std::string result_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "result.json").string();
}
std::string last_checkpoint_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "last.ckpt").string();
}
std::string best_checkpoint_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "best.ckpt").string();
}

std::string test_predictions_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "test_predictions.txt").string();
}

TrainConfig read_train_config(const std::string& run_dir) {
  const auto path = config_path(run_dir);
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": no such file (not a run folder?)");
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error(path + ": not valid JSON");
  try {
    return train_config_from_json(j);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

std::vector<EpochMetrics> read_metrics(const std::string& run_dir) {
  std::vector<EpochMetrics> out;
  std::ifstream in(metrics_path(run_dir));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    try {
      out.push_back(epoch_metrics_from_json(j));
    } catch (const std::invalid_argument&) {
      continue;
    }
  }
  return out;
}

std::optional<RunResult> read_result(const std::string& run_dir) {
  std::ifstream in(result_path(run_dir));
  if (!in) return std::nullopt;
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return run_result_from_json(j);
}

models::Network build_model(const TrainConfig& config) {
  models::ModelConfig mc = config.model_config;
  mc.channels_last = config.channels_last;
  return models::create_model(config.model, mc);
}

std::string resolve_checkpoint(const std::string& run_or_checkpoint) {
  if (!fs::exists(run_or_checkpoint))
    throw std::runtime_error(run_or_checkpoint + ": no such run folder or checkpoint");
  if (!fs::is_directory(run_or_checkpoint)) return run_or_checkpoint;
  const auto last = last_checkpoint_path(run_or_checkpoint);
  if (!fs::exists(last)) throw std::runtime_error(run_or_checkpoint + ": run folder has no last.ckpt");
  return last;
}

TrainConfig checkpoint_config(const std::string& checkpoint) {
  const auto json = nlohmann::json::parse(read_checkpoint_config(checkpoint), nullptr, false);
  if (json.is_discarded() || !json.contains("model"))
    throw std::runtime_error(checkpoint + ": checkpoint carries no training config");
  try {
    return train_config_from_json(json);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(checkpoint + ": " + e.what());
  }
}

}  // namespace rla::engine
