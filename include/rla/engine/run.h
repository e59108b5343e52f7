#pragma once
// The run folder and everything in it that is not weights: the training configuration
// (config.json, both ways), the per-epoch metrics (metrics.jsonl) and the final result
// (result.json). Every reader of a run folder goes through this module.
//
//   <run>/config.json      TrainConfig (engine/train_config.h), the model's resolved configuration included
//   <run>/metrics.jsonl    one EpochMetrics per line
//   <run>/result.json      RunResult: written once, when the run has finished all its epochs
//   <run>/test_predictions.txt  the final weights' top-1 class per test image (one per line, in
//                          dataset order), written with result.json by runs with a validation split
//   <run>/last.ckpt, best.ckpt, best_model.pt, training_curves.png
//   <run>/.lock            the writer's lock (engine/run_folder.h)
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "rla/engine/train_config.h"
#include "rla/models/registry.h"

namespace rla::engine {

/// One line of metrics.jsonl. `val_*` is the held-out split evaluated after every epoch: the
/// validation split when the run has one (DataConfig::val_size), else the test set.
struct EpochMetrics {
  int64_t epoch = 0;  ///< 1-based
  double lr = 0;
  double train_loss = 0, train_top1 = 0, train_top5 = 0;
  double val_loss = 0, val_top1 = 0, val_top5 = 0;
  double seconds = 0, train_img_per_s = 0;
  /// The weight average (RegularizationConfig::ema_decay) on the same held-out split.
  std::optional<double> ema_val_loss, ema_val_top1, ema_val_top5;

  /// Every field with its key (util/json_fields.h); unset optionals are left out.
  template <typename Self, typename Visit>
  static void visit_fields(Self& self, Visit&& visit) {
    visit("epoch", self.epoch);
    visit("lr", self.lr);
    visit("train_loss", self.train_loss);
    visit("train_top1", self.train_top1);
    visit("train_top5", self.train_top5);
    visit("val_loss", self.val_loss);
    visit("val_top1", self.val_top1);
    visit("val_top5", self.val_top5);
    visit("seconds", self.seconds);
    visit("train_img_per_s", self.train_img_per_s);
    visit("ema_val_loss", self.ema_val_loss);
    visit("ema_val_top1", self.ema_val_top1);
    visit("ema_val_top5", self.ema_val_top5);
  }
};

/// result.json: the finished run's final weights on the validation split (when there is one)
/// and on the test set, which is evaluated here once and never used to choose anything.
struct RunResult {
  int64_t epochs = 0;
  std::optional<double> fitted_epochs;  ///< the schedule's length when a time budget shortened it
  std::optional<double> val_loss, val_top1, val_top5;
  double test_loss = 0, test_top1 = 0, test_top5 = 0;
  /// The final weight average, when the run kept one.
  std::optional<double> ema_val_loss, ema_val_top1, ema_val_top5;
  std::optional<double> ema_test_loss, ema_test_top1, ema_test_top5;

  /// Every field with its key (util/json_fields.h); unset optionals are left out.
  template <typename Self, typename Visit>
  static void visit_fields(Self& self, Visit&& visit) {
    visit("epochs", self.epochs);
    visit("fitted_epochs", self.fitted_epochs);
    visit("val_loss", self.val_loss);
    visit("val_top1", self.val_top1);
    visit("val_top5", self.val_top5);
    visit("test_loss", self.test_loss);
    visit("test_top1", self.test_top1);
    visit("test_top5", self.test_top5);
    visit("ema_val_loss", self.ema_val_loss);
    visit("ema_val_top1", self.ema_val_top1);
    visit("ema_val_top5", self.ema_val_top5);
    visit("ema_test_loss", self.ema_test_loss);
    visit("ema_test_top1", self.ema_test_top1);
    visit("ema_test_top5", self.ema_test_top5);
  }
};

nlohmann::json to_json(const EpochMetrics& m);
/// Throws util::FieldError naming the key of a value of the wrong type.
EpochMetrics epoch_metrics_from_json(const nlohmann::json& j);
nlohmann::json to_json(const RunResult& r);
/// Throws util::FieldError naming the key of a value of the wrong type.
RunResult run_result_from_json(const nlohmann::json& j);

/// File names inside a run folder.
std::string config_path(const std::string& run_dir);
std::string metrics_path(const std::string& run_dir);
std::string result_path(const std::string& run_dir);
std::string last_checkpoint_path(const std::string& run_dir);
std::string best_checkpoint_path(const std::string& run_dir);
std::string test_predictions_path(const std::string& run_dir);

/// config.json of a run folder. Throws std::runtime_error naming the file when it is missing
/// or not a configuration.
TrainConfig read_train_config(const std::string& run_dir);
/// metrics.jsonl of a run folder, in file order; unreadable lines are skipped; empty when the
/// file is missing.
std::vector<EpochMetrics> read_metrics(const std::string& run_dir);
/// result.json of a run folder, if the run has finished (nullopt too when it is unreadable or has
/// no numeric test_top1).
std::optional<RunResult> read_result(const std::string& run_dir);

/// A run folder resolves to its last.ckpt (the end of the recipe); a file is used as is.
/// Throws std::runtime_error when neither exists.
std::string resolve_checkpoint(const std::string& run_or_checkpoint);
/// The training configuration a checkpoint carries. Throws std::runtime_error naming the file.
TrainConfig checkpoint_config(const std::string& checkpoint);

}  // namespace rla::engine
