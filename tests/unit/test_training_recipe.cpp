// The modern training recipe in the engine: parameter groups for weight decay, the optimisers,
// the weight average (EMA) and its checkpointing, and resumption that draws the same
// augmentations (TrivialAugmentWide, RandomErasing, Mixup/CutMix) as an uninterrupted run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "../support/test_util.h"
#include "../support/tiny_run.h"
#include "rla/engine/checkpoint.h"
#include "rla/engine/optim.h"
#include "rla/engine/trainer.h"
#include "rla/models/registry.h"
#include "rla/util/field_error.h"

namespace {

namespace fs = std::filesystem;
using namespace rla;

fs::path temp_dir(const std::string& name) {
  return test::scratch_dir("recipe", name);
}

models::Network small_net() {
  models::ModelConfig mc;
  mc.num_classes = 10;
  mc.in_channels = 1;
  torch::manual_seed(3);
  return models::create_model("rla_resnet20", mc);
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

TEST(Optim, NormLayersAndBiasesFormTheNoDecayGroup) {
  auto net = small_net();
  const auto g = engine::split_for_weight_decay(*net);
  EXPECT_EQ(g.all.size(), models::unique_parameters(*net).size());
  EXPECT_EQ(g.decay.size() + g.no_decay.size(), g.all.size());
  // In these networks every norm parameter and bias is a vector, every weight a matrix or kernel.
  for (const auto& p : g.no_decay) EXPECT_EQ(p.dim(), 1);
  for (const auto& p : g.decay) EXPECT_GE(p.dim(), 2);
  int64_t bn = 0;
  for (const auto& m : net->modules())
    if (m->as<models::BatchNorm2dImpl>()) ++bn;
  EXPECT_GE(static_cast<int64_t>(g.no_decay.size()), 2 * bn - 2);  // shared cells may repeat BNs
}

TEST(Optim, NoDecayGroupIsNotDecayed) {
  for (const auto& kind : engine::optimizer_names()) {
    auto net = small_net();
    const auto g = engine::split_for_weight_decay(*net);
    engine::OptimizerConfig oc;
    oc.kind = engine::parse_optimizer_kind(kind);
    oc.momentum = 0.0;
    oc.weight_decay = 0.1;
    oc.norm_weight_decay = 0.0;
    auto opt = engine::make_optimizer(oc, g, /*lr=*/0.5);
    ASSERT_EQ(opt->param_groups().size(), 2u) << kind;
    std::vector<torch::Tensor> before;
    for (auto& p : g.all) {
      p.mutable_grad() = torch::zeros_like(p);
      before.push_back(p.detach().clone());
    }
    opt->step();
    // Zero gradients: only decay moves anything, and only in the decay group.
    for (size_t i = 0; i < g.all.size(); ++i) {
      const bool decayed = std::any_of(g.decay.begin(), g.decay.end(),
                                       [&](const torch::Tensor& t) { return t.is_same(g.all[i]); });
      const double moved = (g.all[i] - before[i]).abs().max().item<double>();
      if (decayed && before[i].abs().max().item<double>() > 0) {
        EXPECT_GT(moved, 0.0) << kind << " parameter " << i;
      } else if (!decayed) {
        EXPECT_EQ(moved, 0.0) << kind << " parameter " << i;
      }
    }
  }
}

TEST(Optim, EqualDecaysKeepOneGroupInParameterOrder) {
  auto net = small_net();
  engine::OptimizerConfig oc;
  auto opt = engine::make_optimizer(oc, engine::split_for_weight_decay(*net), /*lr=*/0.1);
  ASSERT_EQ(opt->param_groups().size(), 1u);
  const auto params = models::unique_parameters(*net);
  const auto& in_group = opt->param_groups()[0].params();
  ASSERT_EQ(in_group.size(), params.size());
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(in_group[i].is_same(params[i]));
}

TEST(Optim, BadOptimizerSettingsAreOneLineErrors) {
  EXPECT_THROW(engine::parse_optimizer_kind("adagrad"), util::FieldError);
  engine::OptimizerConfig oc;
  oc.betas[1] = 1.0;
  EXPECT_THROW(engine::validate_optimizer(oc), util::FieldError);
  oc = {};
  oc.norm_weight_decay = -0.5;
  EXPECT_THROW(engine::validate_optimizer(oc), util::FieldError);
}

TEST(WeightAverage, FollowsTheFormulaEveryNSteps) {
  auto net = small_net();
  engine::WeightAverage avg(*net, 0.9, 2);
  const auto before = models::state_dict(avg.model());
  std::vector<torch::Tensor> old;
  for (const auto& [name, t] : before) old.push_back(t.clone());
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) p.add_(1.0);
    for (auto& [name, b] : models::state_dict(*net))
      if (name.find("num_batches_tracked") != std::string::npos) b.fill_(7);
  }
  avg.update(*net, 1);  // not a multiple of 2: nothing happens
  const auto same = models::state_dict(avg.model());
  for (size_t i = 0; i < same.size(); ++i) EXPECT_TRUE(same[i].second.equal(old[i])) << same[i].first;
  avg.update(*net, 2);
  const auto now = models::state_dict(avg.model()), src = models::state_dict(*net);
  for (size_t i = 0; i < now.size(); ++i) {
    if (now[i].second.is_floating_point()) {
      EXPECT_TRUE(torch::allclose(now[i].second, 0.9 * old[i] + 0.1 * src[i].second, 1e-5, 1e-6))
          << now[i].first;
    } else {
      EXPECT_TRUE(now[i].second.equal(src[i].second)) << now[i].first;  // integer buffers are copied
    }
  }
  EXPECT_THROW(engine::WeightAverage(*net, 1.0, 1), std::invalid_argument);
}

TEST(WeightAverage, DecayAdjustmentIsTorchvisions) {
  engine::TrainConfig c;
  c.regularization.ema_decay = 0.99998;
  c.regularization.ema_steps = 32;
  c.run.batch_size = 128;
  c.run.epochs = 600;
  // torchvision: alpha = (1 - decay) * world_size * batch_size * steps / epochs, capped at 1.
  EXPECT_NEAR(engine::ema_update_decay(c, 8), 1.0 - 2e-5 * 8 * 128 * 32 / 600.0, 1e-12);
  c.run.epochs = 1;
  c.run.batch_size = 100000;
  EXPECT_EQ(engine::ema_update_decay(c, 1), 0.0);
}

engine::TrainConfig modern_run(const std::string& dir) {
  auto c = test::tiny_run_config(dir);
  c.data.synthetic_size = 320;
  c.run.epochs = 3;
  c.run.workers = 2;
  c.data.auto_augment = data::AutoAugment::kTrivialAugment;
  c.data.random_erasing = 0.25;
  c.regularization.mixup_alpha = 0.2;
  c.regularization.cutmix_alpha = 1.0;
  c.regularization.label_smoothing = 0.1;
  c.optimizer.norm_weight_decay = 0.0;
  c.optimizer.grad_clip = 2.0;
  c.regularization.ema_decay = 0.999;
  c.regularization.ema_steps = 2;
  c.schedule.warmup_epochs = 0.5;
  return c;
}

TEST(TrainerRecipe, ResumedModernRunDrawsTheSameAugmentations) {
  const auto full_dir = temp_dir("full"), cut_dir = temp_dir("cut"), plain_dir = temp_dir("plain");
  auto full = engine::train(modern_run(full_dir.string()));
  ASSERT_EQ(full.history.size(), 3u);
  // 10 batches per epoch: stops inside the second epoch.
  auto [first, resumed] = test::train_stopped_and_resumed(modern_run(cut_dir.string()), 14);
  ASSERT_TRUE(first.stopped_early);
  ASSERT_EQ(resumed.history.size(), 3u);
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_NEAR(resumed.history[e].train_loss, full.history[e].train_loss, 1e-5) << "epoch " << e + 1;
    EXPECT_NEAR(resumed.history[e].val_loss, full.history[e].val_loss, 1e-5) << "epoch " << e + 1;
    ASSERT_TRUE(resumed.history[e].ema_val_loss && full.history[e].ema_val_loss);
    EXPECT_NEAR(*resumed.history[e].ema_val_loss, *full.history[e].ema_val_loss, 1e-5) << "epoch " << e + 1;
  }
  ASSERT_TRUE(full.final && full.final->ema_test_top1);
  EXPECT_TRUE(engine::checkpoint_has_average(engine::last_checkpoint_path(cut_dir.string())));
  const auto which = read_json(full_dir / "best_model.json");
  EXPECT_TRUE(which["weights"] == "raw" || which["weights"] == "ema") << which.dump();
  // The options act: without them the same seed trains differently.
  auto plain = test::tiny_run_config(plain_dir.string());
  plain.data.synthetic_size = 320;
  plain.run.epochs = 1;
  plain.run.workers = 2;
  const auto p = engine::train(plain);
  EXPECT_GT(std::abs(p.history[0].train_loss - full.history[0].train_loss), 1e-3);
  for (const auto& d : {full_dir, cut_dir, plain_dir}) fs::remove_all(d);
}

// The average is reset to the weights while the learning rate warms up, measured in fractional
// epochs: a warm-up covering the whole (only) epoch leaves the average equal to the weights, a
// warm-up of half an epoch does not.
TEST(TrainerRecipe, WeightAverageRestartsUntilTheWarmUpEnds) {
  for (const double warmup : {1.0, 0.5}) {
    const auto dir = temp_dir("warmup");
    auto c = test::tiny_run_config(dir.string());
    c.data.synthetic_size = 320;  // 10 steps
    c.run.epochs = 1;
    c.regularization.ema_decay = 0.999;
    c.regularization.ema_steps = 1;
    c.schedule.warmup_epochs = warmup;
    const auto r = engine::train(c);
    ASSERT_TRUE(r.history.at(0).ema_val_loss);
    if (warmup == 1.0) {
      EXPECT_NEAR(*r.history[0].ema_val_loss, r.history[0].val_loss, 1e-6);
    } else {
      EXPECT_GT(std::abs(*r.history[0].ema_val_loss - r.history[0].val_loss), 1e-4);
    }
    fs::remove_all(dir);
  }
}

TEST(TrainerRecipe, EvalPicksRawOrAverageWeights) {
  const auto dir = temp_dir("eval");
  auto c = test::tiny_run_config(dir.string());
  c.data.synthetic_size = 256;
  c.run.epochs = 1;
  c.regularization.ema_decay = 0.99;  // adjusted for the budget: 1 - 0.01 * 32 * 1 / 1 = 0.68 per step
  c.regularization.ema_steps = 1;
  engine::train(c);
  const std::string base = "--threads 1 eval " + dir.string() + " --json";
  const auto raw = test::run_rla(base), ema = test::run_rla(base + " --weights ema");
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  ASSERT_EQ(ema.exit_code, 0) << ema.output;
  const auto jr = nlohmann::json::parse(raw.output), je = nlohmann::json::parse(ema.output);
  EXPECT_EQ(je["weights"], "ema");
  EXPECT_NE(jr["loss"].get<double>(), je["loss"].get<double>());  // two different sets of weights
  // The device is checked before anything is loaded; the CPU named explicitly changes nothing.
  const auto cpu = test::run_rla(base + " --device cpu");
  ASSERT_EQ(cpu.exit_code, 0) << cpu.output;
  EXPECT_EQ(nlohmann::json::parse(cpu.output)["loss"], jr["loss"]);
  const auto missing = test::run_rla("--threads 1 eval " + dir.string() + " --device cuda:99");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_EQ(std::count(missing.output.begin(), missing.output.end(), '\n'), 1) << missing.output;
  // A run without an average: a one-line error.
  const auto plain_dir = temp_dir("eval_plain");
  auto p = test::tiny_run_config(plain_dir.string());
  p.data.synthetic_size = 128;
  p.run.epochs = 1;
  engine::train(p);
  const auto bad = test::run_rla("--threads 1 eval " + plain_dir.string() + " --weights ema");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_EQ(std::count(bad.output.begin(), bad.output.end(), '\n'), 1) << bad.output;
  EXPECT_NE(bad.output.find("no weight average"), std::string::npos) << bad.output;
  fs::remove_all(dir);
  fs::remove_all(plain_dir);
}

TEST(TrainerRecipe, PresetsFillWhatTheCommandLineLeavesUnset) {
  const auto shown = test::run_rla("train --show-recipe");
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_NE(shown.output.find("--recipe paper"), std::string::npos);
  EXPECT_NE(shown.output.find("--recipe modern"), std::string::npos);
  EXPECT_NE(shown.output.find("--auto-augment trivialaugment"), std::string::npos);
  const auto dir = temp_dir("preset");
  const auto r = test::run_rla(
      "--threads 1 train --dataset synthetic --recipe modern --lr 0.05 --batch-size 32 "
      "--max-steps 1 --quiet --out " +
      dir.string());
  ASSERT_EQ(r.exit_code, 130) << r.output;  // stopped by --max-steps
  const auto cfg = read_json(dir / "config.json");
  EXPECT_EQ(cfg["recipe"], "modern");
  EXPECT_EQ(cfg["lr"], 0.05);  // given: wins over the preset's 0.5
  EXPECT_EQ(cfg["batch_size"], 32);
  EXPECT_EQ(cfg["epochs"], 600);  // from the preset
  EXPECT_EQ(cfg["auto_augment"], "trivialaugment");
  EXPECT_EQ(cfg["mixup_alpha"], 0.2);
  EXPECT_EQ(cfg["norm_weight_decay"], 0.0);
  EXPECT_EQ(cfg["nesterov"], false);
  fs::remove_all(dir);
}

TEST(TrainerRecipe, ContradictoryOptionsAreOneLineErrorsBeforeWork) {
  for (const std::string bad :
       {"--mixup 0.2 --no-augment", "--auto-augment randaugment --randaugment-m 31", "--ema-decay 1",
        "--ema-decay 0.9 --ema-steps 0", "--random-erasing 1.5", "--mixup -1", "--optimizer adagrad",
        "--betas 0.9", "--clip-grad-norm -1", "--recipe nosuch", "--mixup 0.2 --exits block",
        "--auto-augment trivialaugment --no-augment", "--device cuda:99", "--device tpu", "--device gpu0"}) {
    const auto dir = temp_dir("bad");
    const auto r =
        test::run_rla("--threads 1 train --dataset synthetic --quiet " + bad + " --out " + dir.string());
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << bad << "\n" << r.output;
    EXPECT_FALSE(fs::exists(dir / "last.ckpt")) << bad;
    fs::remove_all(dir);
  }
}

}  // namespace
