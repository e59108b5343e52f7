// The training configuration (engine/train_config.h): config.json files that earlier versions
// wrote still read with their values (tests/fixtures/config.*.json, copied from experiments/),
// the flat keys stay, every bad value names its field, enum names parse and print from one table,
// and the presets (engine/recipes.h) set only known fields, and only those left unset.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "../support/test_util.h"
#include "rla/engine/recipes.h"
#include "rla/engine/run.h"
#include "rla/util/field_error.h"

namespace {

namespace fs = std::filesystem;
using namespace rla;

nlohmann::json fixture(const std::string& name) {
  std::ifstream in(fs::path(RLA_FIXTURES_DIR) / name);
  return nlohmann::json::parse(in);
}

// The fixture as a run folder's config.json, read the way every command reads a run.
engine::TrainConfig read_as_run(const std::string& name) {
  const auto dir = test::scratch_dir("config", name);
  fs::copy_file(fs::path(RLA_FIXTURES_DIR) / name, dir / "config.json", fs::copy_options::overwrite_existing);
  auto c = engine::read_train_config(dir.string());
  fs::remove_all(dir);
  return c;
}

std::set<std::string> keys_of(const nlohmann::json& j) {
  std::set<std::string> keys;
  for (const auto& [key, value] : j.items()) keys.insert(key);
  return keys;
}

// Every key the fixture has is written back with its value (exit_input "" is now "both").
void expect_written_back(const nlohmann::json& file, const engine::TrainConfig& c) {
  const auto j = engine::to_json(c);
  for (const auto& [key, value] : file.items()) {
    ASSERT_TRUE(j.contains(key)) << key;
    if (key == "exit_input" && value == "") {
      EXPECT_EQ(j[key], "both");
    } else {
      EXPECT_EQ(j[key], value) << key;
    }
  }
}

TEST(TrainConfigJson, ReadsTheOldestCommittedConfig) {
  const auto c = read_as_run("config.table-resnet20-seed0.json");
  EXPECT_EQ(c.model, "resnet20");
  EXPECT_EQ(c.model_config.in_channels, 1);
  EXPECT_EQ(c.model_config.num_classes, 10);
  EXPECT_EQ(c.model_config.zero_init_residual, false);
  EXPECT_FALSE(c.model_config.rla_channels.has_value());
  EXPECT_EQ(c.data.dataset, "fashion-mnist");
  EXPECT_EQ(c.data.val_size, 5000u);
  EXPECT_TRUE(c.data.augment);
  EXPECT_EQ(c.run.epochs, 10);
  EXPECT_EQ(c.run.batch_size, 128);
  EXPECT_EQ(c.run.threads, 1);
  EXPECT_EQ(c.run.out_dir, "experiments/table/resnet20-seed0");
  EXPECT_EQ(c.schedule.kind, engine::ScheduleKind::kCosine);
  EXPECT_DOUBLE_EQ(c.schedule.base_lr, 0.1);
  EXPECT_DOUBLE_EQ(c.optimizer.weight_decay, 5e-4);
  EXPECT_DOUBLE_EQ(c.optimizer.momentum, 0.9);
  EXPECT_TRUE(c.optimizer.nesterov);
  EXPECT_EQ(c.input_shape, (std::vector<int64_t>{1, 28, 28}));
  // Keys this version did not write yet keep their defaults.
  EXPECT_EQ(c.optimizer.kind, engine::OptimizerKind::kSgd);
  EXPECT_EQ(c.data.auto_augment, data::AutoAugment::kNone);
  EXPECT_EQ(c.regularization.ema_decay, 0.0);
  EXPECT_FALSE(c.exits.enabled());
  EXPECT_EQ(c.exits.input, models::ExitInput::kBoth);
  EXPECT_EQ(c.run.recipe, "");
  expect_written_back(fixture("config.table-resnet20-seed0.json"), c);
}

TEST(TrainConfigJson, ReadsARecipeRun) {
  const auto c = read_as_run("config.recipe-modern-seed0.json");
  EXPECT_EQ(c.run.recipe, "modern");
  EXPECT_EQ(c.data.auto_augment, data::AutoAugment::kTrivialAugment);
  EXPECT_DOUBLE_EQ(c.data.random_erasing, 0.1);
  EXPECT_DOUBLE_EQ(c.regularization.mixup_alpha, 0.2);
  EXPECT_DOUBLE_EQ(c.regularization.cutmix_alpha, 1.0);
  EXPECT_DOUBLE_EQ(c.regularization.label_smoothing, 0.1);
  EXPECT_DOUBLE_EQ(c.regularization.ema_decay, 0.99998);
  EXPECT_EQ(c.regularization.ema_steps, 32);
  EXPECT_DOUBLE_EQ(c.schedule.base_lr, 0.0625);
  EXPECT_DOUBLE_EQ(c.schedule.warmup_epochs, 0.0333);
  EXPECT_DOUBLE_EQ(c.optimizer.weight_decay, 2e-5);
  EXPECT_DOUBLE_EQ(c.optimizer.norm_weight_decay, 0.0);
  EXPECT_FALSE(c.optimizer.nesterov);
  EXPECT_EQ(c.optimizer.betas, (std::array<double, 2>{0.9, 0.999}));
  EXPECT_EQ(c.model_config.rla_channels, 12);
  EXPECT_EQ(c.model_config.aggregation, models::Aggregation::kRla);
  EXPECT_EQ(c.model_config.state_input, models::StateInput::kOutput);
  EXPECT_FALSE(c.exits.enabled());
  EXPECT_EQ(c.exits.input, models::ExitInput::kBoth);  // stored as "" by runs without exits
  expect_written_back(fixture("config.recipe-modern-seed0.json"), c);
}

TEST(TrainConfigJson, ReadsAnExitRun) {
  const auto c = read_as_run("config.exits-rla_resnet20-both.json");
  ASSERT_TRUE(c.exits.enabled());
  EXPECT_EQ(*c.exits.placement, models::ExitPlacement::kBlock);
  EXPECT_EQ(c.exits.input, models::ExitInput::kBoth);
  EXPECT_TRUE(c.exits.freeze_backbone);
  EXPECT_DOUBLE_EQ(c.exits.weight, 0.5);
  EXPECT_EQ(c.run.init_checkpoint, "experiments/table/rla_resnet20-seed0/last.ckpt");
  EXPECT_EQ(c.run.epochs, 3);
  EXPECT_EQ(c.run.device, "cpu");
  EXPECT_EQ(c.class_names.size(), 10u);
  expect_written_back(fixture("config.exits-rla_resnet20-both.json"), c);
}

// config.json stays flat, with the keys it has had since exit_projection was added: the frozen
// experiment tool and every earlier version read them.
TEST(TrainConfigJson, WritesTheFlatKeysOfEveryRunFolder) {
  const std::set<std::string> keys = {"augment",
                                      "auto_augment",
                                      "batch_size",
                                      "betas",
                                      "channels_last",
                                      "class_names",
                                      "cutmix_alpha",
                                      "data_root",
                                      "dataset",
                                      "device",
                                      "ema_decay",
                                      "ema_steps",
                                      "epochs",
                                      "exit_input",
                                      "exit_projection",
                                      "exit_weight",
                                      "exits",
                                      "freeze_backbone",
                                      "freeze_bn",
                                      "gamma",
                                      "grad_clip",
                                      "image_size",
                                      "init_checkpoint",
                                      "input_mean",
                                      "input_shape",
                                      "input_std",
                                      "label_smoothing",
                                      "limit_test",
                                      "limit_train",
                                      "lr",
                                      "milestones",
                                      "mix_prob",
                                      "mix_switch_prob",
                                      "mixup_alpha",
                                      "model",
                                      "model_config",
                                      "momentum",
                                      "nesterov",
                                      "norm_weight_decay",
                                      "opt_eps",
                                      "optimizer",
                                      "out_dir",
                                      "randaugment_magnitude",
                                      "randaugment_ops",
                                      "random_erasing",
                                      "recipe",
                                      "rmsprop_alpha",
                                      "schedule",
                                      "seed",
                                      "step_size",
                                      "synthetic_size",
                                      "threads",
                                      "time_budget_minutes",
                                      "val_seed",
                                      "val_size",
                                      "warmup_epochs",
                                      "weight_decay",
                                      "workers"};
  const auto j = engine::to_json(engine::TrainConfig{});
  EXPECT_EQ(keys_of(j), keys);
  EXPECT_EQ(j["exits"], "");  // no exit heads
  EXPECT_EQ(j["exit_input"], "both");
  EXPECT_EQ(j["optimizer"], "sgd");
  EXPECT_EQ(j["schedule"], "cosine");
  EXPECT_EQ(j["auto_augment"], "none");
  EXPECT_EQ(j["betas"], nlohmann::json({0.9, 0.999}));
  EXPECT_EQ(engine::to_json(engine::train_config_from_json(j)), j);
}

TEST(TrainConfigJson, AValueOfTheWrongKindNamesItsKey) {
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {{{"model", "x"}, {"epochs", "three"}}, "epochs"},
      {{{"model", "x"}, {"schedule", "bogus"}}, "schedule"},
      {{{"model", "x"}, {"optimizer", "adagrad"}}, "optimizer"},
      {{{"model", "x"}, {"auto_augment", 3}}, "auto_augment"},
      {{{"model", "x"}, {"betas", {0.9}}}, "betas"},
      {{{"model", "x"}, {"exits", "sideways"}}, "exits"},
      {{{"model", "x"}, {"model_config", {{"aggregation", "max"}}}}, "aggregation"},
  };
  for (const auto& [j, key] : cases) {
    try {
      engine::train_config_from_json(j);
      ADD_FAILURE() << j.dump() << " was accepted";
    } catch (const util::FieldError& e) {
      EXPECT_EQ(e.field(), key) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind(key, 0), 0u) << e.what();
    }
  }
}

TEST(TrainConfigValidation, EveryBadValueNamesItsField) {
  using Change = std::function<void(engine::TrainConfig&)>;
  const std::vector<std::pair<std::string, Change>> cases = {
      {"warmup_epochs", [](auto& c) { c.schedule.warmup_epochs = -1; }},
      {"lr", [](auto& c) { c.schedule.base_lr = 0; }},
      {"step_size", [](auto& c) { c.schedule.kind = engine::ScheduleKind::kStep, c.schedule.step_size = 0; }},
      {"momentum", [](auto& c) { c.optimizer.momentum = 1; }},
      {"weight_decay", [](auto& c) { c.optimizer.weight_decay = -1; }},
      {"norm_weight_decay", [](auto& c) { c.optimizer.norm_weight_decay = -0.5; }},
      {"betas",
       [](auto& c) {
         c.optimizer.betas = {0.9, 1.0};
       }},
      {"rmsprop_alpha", [](auto& c) { c.optimizer.rmsprop_alpha = 1; }},
      {"opt_eps", [](auto& c) { c.optimizer.eps = 0; }},
      {"grad_clip", [](auto& c) { c.optimizer.grad_clip = -1; }},
      {"label_smoothing", [](auto& c) { c.regularization.label_smoothing = 1; }},
      {"ema_decay", [](auto& c) { c.regularization.ema_decay = 1; }},
      {"ema_steps", [](auto& c) { c.regularization.ema_decay = 0.9, c.regularization.ema_steps = 0; }},
      {"mixup_alpha", [](auto& c) { c.regularization.mixup_alpha = -1; }},
      {"mix_prob", [](auto& c) { c.regularization.mixup_alpha = 0.2, c.regularization.mix_prob = 0; }},
      {"mix_switch_prob",
       [](auto& c) { c.regularization.cutmix_alpha = 1, c.regularization.mix_switch_prob = 2; }},
      {"dataset", [](auto& c) { c.data.dataset = "nosuch"; }},
      {"augment", [](auto& c) { c.data.augment = false, c.data.random_erasing = 0.1; }},
      {"augment", [](auto& c) { c.data.augment = false, c.regularization.mixup_alpha = 0.2; }},
      {"randaugment_ops",
       [](auto& c) { c.data.auto_augment = data::AutoAugment::kRandAugment, c.data.randaugment_ops = 0; }},
      {"randaugment_magnitude",
       [](auto& c) {
         c.data.auto_augment = data::AutoAugment::kRandAugment, c.data.randaugment_magnitude = 31;
       }},
      {"random_erasing", [](auto& c) { c.data.random_erasing = 1.5; }},
      {"epochs", [](auto& c) { c.run.epochs = 0; }},
      {"batch_size", [](auto& c) { c.run.batch_size = 0; }},
      {"workers", [](auto& c) { c.run.workers = -1; }},
      {"gamma", [](auto& c) { c.schedule.kind = engine::ScheduleKind::kStep, c.schedule.gamma = -1; }},
      {"milestones",
       [](auto& c) {
         c.schedule.kind = engine::ScheduleKind::kMultistep, c.schedule.milestones = {3, 1};
       }},
      {"workers", [](auto& c) { c.run.workers = 100000; }},
      {"time_budget_minutes", [](auto& c) { c.run.time_budget_minutes = -1; }},
      {"device", [](auto& c) { c.run.device = "tpu"; }},
      {"device", [](auto& c) { c.run.device = "cuda:99"; }},
      {"mixup_alpha",
       [](auto& c) {
         c.regularization.mixup_alpha = 0.2, c.exits.placement = models::ExitPlacement::kBlock;
       }},
      {"freeze_backbone", [](auto& c) { c.exits.freeze_backbone = true; }},
      {"exit_weight",
       [](auto& c) { c.exits.placement = models::ExitPlacement::kStage, c.exits.weight = -1; }},
      {"exit_projection", [](auto& c) { c.exits.projection = -1; }},
  };
  engine::validate_train_config(engine::TrainConfig{});  // the defaults are valid
  const auto keys = keys_of(engine::to_json(engine::TrainConfig{}));
  for (const auto& [field, change] : cases) {
    engine::TrainConfig c;
    change(c);
    try {
      engine::validate_train_config(c);
      ADD_FAILURE() << field << ": accepted";
    } catch (const util::FieldError& e) {
      const std::string what = e.what();
      EXPECT_EQ(e.field(), field) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      for (const auto& f : e.fields()) {
        EXPECT_TRUE(keys.count(f)) << f << " is not a config.json key: " << what;
        EXPECT_NE(what.find(f), std::string::npos) << what << " does not name " << f;
      }
    }
  }
}

TEST(TrainConfigEnums, NamesParseAndPrintFromOneTable) {
  for (const auto& name : engine::optimizer_names())
    EXPECT_EQ(engine::to_string(engine::parse_optimizer_kind(name)), name);
  for (const auto& name : engine::schedule_names())
    EXPECT_EQ(engine::to_string(engine::parse_schedule_kind(name)), name);
  for (const auto& name : data::auto_augment_names())
    EXPECT_EQ(data::to_string(data::parse_auto_augment(name)), name);
  EXPECT_EQ(engine::schedule_names(), (std::vector<std::string>{"constant", "step", "multistep", "cosine"}));
  try {
    engine::parse_schedule_kind("linear");
    FAIL() << "linear was accepted";
  } catch (const util::FieldError& e) {
    EXPECT_EQ(e.field(), "schedule");
    EXPECT_EQ(std::string(e.what()),
              "schedule: unknown 'linear' (expected constant, step, multistep or cosine)");
  }
}

TEST(Recipes, SetKnownFieldsExceptTheKeptOnes) {
  const auto keys = keys_of(engine::to_json(engine::TrainConfig{}));
  for (const auto& r : engine::train_recipes()) {
    for (const auto& [field, value] : r.values) EXPECT_TRUE(keys.count(field)) << r.name << ": " << field;
    engine::TrainConfig c;
    engine::apply_recipe(r, c);
    engine::validate_train_config(c);
    EXPECT_EQ(c.run.recipe, r.name);
  }
  engine::TrainConfig c;
  c.run.epochs = 7;
  engine::apply_recipe(engine::find_recipe("paper"), c,
                       [](const std::string& field) { return field == "epochs"; });
  EXPECT_EQ(c.run.epochs, 7);
  EXPECT_EQ(c.run.batch_size, 256);
  EXPECT_EQ(c.schedule.kind, engine::ScheduleKind::kStep);
  EXPECT_EQ(c.schedule.step_size, 30);
  EXPECT_DOUBLE_EQ(c.optimizer.weight_decay, 1e-4);
  EXPECT_FALSE(c.optimizer.nesterov);
  engine::TrainConfig m;
  engine::apply_recipe(engine::find_recipe("modern"), m);
  EXPECT_EQ(m.data.auto_augment, data::AutoAugment::kTrivialAugment);
  EXPECT_DOUBLE_EQ(m.regularization.cutmix_alpha, 1.0);
  EXPECT_DOUBLE_EQ(m.regularization.ema_decay, 0.99998);
  EXPECT_EQ(m.run.epochs, 600);
  EXPECT_DOUBLE_EQ(m.schedule.base_lr, 0.5);
  try {
    engine::find_recipe("nosuch");
    FAIL() << "nosuch was found";
  } catch (const util::FieldError& e) {
    EXPECT_EQ(e.field(), "recipe");
  }
}

}  // namespace
