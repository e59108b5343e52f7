#pragma once
// The training configuration: every option of a run defined once, with its default, its
// config.json key (each struct's visit_fields, util/json_fields.h) and its check (validate_*,
// throwing util::FieldError that names the key). One struct per concern: the model
// (models::ModelConfig), the data and per-image augmentation (data::DataConfig), the optimiser
// (OptimizerConfig), the learning-rate schedule (ScheduleConfig), regularisation, exit heads and
// the run itself. config.json is flat, as every run folder has had it: each key at the top level
// and model_config nested.
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "rla/data/sources.h"
#include "rla/engine/optim.h"
#include "rla/engine/schedule.h"
#include "rla/models/exit_heads.h"
#include "rla/models/registry.h"

namespace rla::engine {

/// The most data-loading threads a run may ask for (RunConfig::workers).
constexpr int kMaxWorkers = 64;

/// Label smoothing, batch mixing and the weight average.
struct RegularizationConfig {
  double label_smoothing = 0.0;
  /// Mixup / CutMix of each training batch (data/augment.h, BatchMixOptions): 0 alphas = off.
  double mixup_alpha = 0.0, cutmix_alpha = 0.0;
  double mix_prob = 1.0, mix_switch_prob = 0.5;
  /// Exponential moving average of the weights, as torchvision's model EMA: 0 = off; else the
  /// nominal decay, updated every ema_steps steps with torchvision's budget adjustment
  /// (trainer.h, ema_update_decay) and reset to the weights during warm-up.
  double ema_decay = 0.0;
  int64_t ema_steps = 32;

  bool mixing() const { return mixup_alpha > 0 || cutmix_alpha > 0; }

  template <typename Self, typename Visit>
  static void visit_fields(Self& self, Visit&& visit) {
    visit("label_smoothing", self.label_smoothing);
    visit("ema_decay", self.ema_decay);
    visit("ema_steps", self.ema_steps);
    visit("mixup_alpha", self.mixup_alpha);
    visit("cutmix_alpha", self.cutmix_alpha);
    visit("mix_prob", self.mix_prob);
    visit("mix_switch_prob", self.mix_switch_prob);
  }
};

/// Early-exit heads (models/exit_heads.h), trained jointly with the model or post hoc on a frozen one.
struct ExitConfig {
  std::optional<models::ExitPlacement> placement;  ///< none (config.json: ""), block or stage
  models::ExitInput input = models::ExitInput::kBoth;
  double weight = 0.5;           ///< joint training: loss = final + weight * mean exit loss
  int64_t projection = 0;        ///< heads project their input to this many channels first (0: none)
  bool freeze_backbone = false;  ///< post hoc: the model is frozen (eval mode), only the heads train

  bool enabled() const { return placement.has_value(); }

  template <typename Self, typename Visit>
  static void visit_fields(Self& self, Visit&& visit) {
    visit("exits", self.placement);
    visit("exit_input", self.input);
    visit("exit_weight", self.weight);
    visit("exit_projection", self.projection);
    visit("freeze_backbone", self.freeze_backbone);
  }
};

/// How long, where and from what the run trains, and where it writes.
struct RunConfig {
  int64_t epochs = 4;
  /// Wall-clock budget of the whole run in minutes (0: none). After a short timed probe the
  /// schedule is shortened (never lengthened past `epochs`) so that training, the held-out
  /// evaluations and the final test end inside it; the last epoch may then be partial.
  double time_budget_minutes = 0;
  int64_t batch_size = 128;
  uint64_t seed = 0;
  /// Where the model trains: "cpu", "cuda" or "cuda:N" (batches are moved there; data loading
  /// stays on the CPU).
  std::string device = "cpu";
  int threads = 0;            ///< 0: all cores
  int workers = 1;            ///< loader threads, 0 to kMaxWorkers
  bool channels_last = true;  ///< NHWC activations and weights (measured faster for every family)
  std::string out_dir;        ///< default runs/<model>-<dataset>
  /// Continue the run in out_dir from its last.ckpt (a folder without one starts afresh).
  bool resume = false;
  /// Start afresh in an out_dir that holds a run: its files are deleted once this run holds the
  /// folder's lock and has been built. Without resume or overwrite such a folder is refused
  /// (engine/run_folder.h).
  bool overwrite = false;
  bool quiet = false;           ///< no progress bars
  int64_t max_steps = 0;        ///< stop (with a checkpoint, like Ctrl-C) after this many steps; tests only
  std::string init_checkpoint;  ///< start from these model weights (e.g. post-hoc exit heads)
  bool freeze_bn = false;       ///< BatchNorm keeps its running statistics (eval mode) while training
  std::string recipe;           ///< the preset the options started from ("" = none; engine/recipes.h)

  /// Stored in config.json; resume, overwrite, quiet and max_steps are how this process runs.
  template <typename Self, typename Visit>
  static void visit_fields(Self& self, Visit&& visit) {
    visit("epochs", self.epochs);
    visit("time_budget_minutes", self.time_budget_minutes);
    visit("batch_size", self.batch_size);
    visit("recipe", self.recipe);
    visit("seed", self.seed);
    visit("device", self.device);
    visit("threads", self.threads);
    visit("workers", self.workers);
    visit("channels_last", self.channels_last);
    visit("out_dir", self.out_dir);
    visit("init_checkpoint", self.init_checkpoint);
    visit("freeze_bn", self.freeze_bn);
  }
};

struct TrainConfig {
  std::string model = "rla_resnet20";
  /// k, aggregation, init and state-input switches; unset fields take the model's defaults.
  /// train() stores the resolved configuration here (every field the model has set).
  models::ModelConfig model_config;
  data::DataConfig data;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;  ///< lr, kind, warm-up...; its epochs are the run's
  RegularizationConfig regularization;
  ExitConfig exits;
  RunConfig run;
  /// Recorded by train(), not options: what the model's inputs were, so that a run can be used
  /// for inference without its dataset (the input [C, H, W], the normalisation, class names).
  std::vector<int64_t> input_shape;
  std::vector<double> input_mean, input_std;
  std::vector<std::string> class_names;

  /// Every flat config.json key (model_config, nested, is written by to_json(ModelConfig)).
  template <typename Self, typename Visit>
  static void visit_fields(Self& self, Visit&& visit) {
    visit("model", self.model);
    data::DataConfig::visit_fields(self.data, visit);
    OptimizerConfig::visit_fields(self.optimizer, visit);
    ScheduleConfig::visit_fields(self.schedule, visit);
    RegularizationConfig::visit_fields(self.regularization, visit);
    ExitConfig::visit_fields(self.exits, visit);
    RunConfig::visit_fields(self.run, visit);
    visit("input_shape", self.input_shape);
    visit("input_mean", self.input_mean);
    visit("input_std", self.input_std);
    visit("class_names", self.class_names);
  }
};

nlohmann::json to_json(const models::ModelConfig& c);  ///< only the fields that are set
/// Throws util::FieldError naming the key of a value of the wrong type or an unknown name.
models::ModelConfig model_config_from_json(const nlohmann::json& j);
nlohmann::json to_json(const TrainConfig& c);
/// A configuration as config.json (and a checkpoint) stores it; keys it lacks keep their defaults,
/// so files of every earlier version read. Throws std::invalid_argument without a "model" key and
/// util::FieldError naming the key of a value of the wrong type.
TrainConfig train_config_from_json(const nlohmann::json& j);
/// Sets the fields `j` holds (flat config.json keys) and leaves the others; throws as
/// train_config_from_json.
void update_train_config(TrainConfig& config, const nlohmann::json& j);

/// The device `name` names ("cpu", "cuda", "cuda:N"). Throws util::FieldError("device") when it
/// is malformed or not present on this machine.
c10::Device parse_device(const std::string& name);

/// Each throws util::FieldError naming the field (its config.json key) at fault.
void validate_regularization(const RegularizationConfig& config);
void validate_exits(const ExitConfig& config);
void validate_run(const RunConfig& config);
/// Every part, and the options that contradict each other across parts (mixing with exit heads
/// or without augmentation, a frozen backbone without exits or initial weights).
void validate_train_config(const TrainConfig& config);

}  // namespace rla::engine
