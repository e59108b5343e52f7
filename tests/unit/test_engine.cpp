// Training engine: schedules, IDX reading and its errors, loader determinism, checkpoints,
// and resume-after-stop equivalence on synthetic data.
#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "../support/test_util.h"
#include "../support/tiny_run.h"
#include "rla/data/idx.h"
#include "rla/data/loader.h"
#include "rla/data/synthetic.h"
#include "rla/engine/checkpoint.h"
#include "rla/engine/schedule.h"
#include "rla/engine/trainer.h"
#include "rla/inference/load.h"
#include "rla/models/registry.h"
#include "rla/util/field_error.h"

namespace {

namespace fs = std::filesystem;
using namespace rla;

fs::path temp_dir(const std::string& name) {
  return test::scratch_dir("test", name);
}

void put_be32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Writes an IDX image file (n images h x w, pixel = (i + y * w + x) % 256) and label file.
void write_idx(const fs::path& dir, uint32_t n, uint32_t h, uint32_t w, bool gz, uint32_t label_mod = 10) {
  std::string img, lab;
  put_be32(img, 0x803);
  put_be32(img, n);
  put_be32(img, h);
  put_be32(img, w);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t p = 0; p < h * w; ++p) img.push_back(static_cast<char>((i + p) % 256));
  put_be32(lab, 0x801);
  put_be32(lab, n);
  for (uint32_t i = 0; i < n; ++i) lab.push_back(static_cast<char>(i % label_mod));
  auto write = [gz](const fs::path& p, const std::string& bytes) {
    if (gz) {
      gzFile f = gzopen((p.string() + ".gz").c_str(), "wb");
      gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
      gzclose(f);
    } else {
      std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
  };
  write(dir / "train-images-idx3-ubyte", img);
  write(dir / "train-labels-idx1-ubyte", lab);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const data::DataError& e) {
    return e.what();
  }
  return "";
}

TEST(Schedule, ValuesAtKnownPoints) {
  engine::ScheduleConfig c;
  c.kind = engine::ScheduleKind::kStep;
  c.base_lr = 0.1;
  c.step_size = 30;
  EXPECT_DOUBLE_EQ(engine::lr_at(c, 0), 0.1);
  EXPECT_NEAR(engine::lr_at(c, 30), 0.01, 1e-12);
  EXPECT_NEAR(engine::lr_at(c, 95), 0.0001, 1e-12);
  c.kind = engine::ScheduleKind::kMultistep;
  c.milestones = {2, 5};
  EXPECT_NEAR(engine::lr_at(c, 1.99), 0.1, 1e-12);
  EXPECT_NEAR(engine::lr_at(c, 2), 0.01, 1e-12);
  EXPECT_NEAR(engine::lr_at(c, 5), 0.001, 1e-12);
  c.kind = engine::ScheduleKind::kCosine;
  c.epochs = 10;
  EXPECT_NEAR(engine::lr_at(c, 0), 0.1, 1e-12);
  EXPECT_NEAR(engine::lr_at(c, 5), 0.05, 1e-12);
  EXPECT_NEAR(engine::lr_at(c, 10), 0.0, 1e-12);
  c.warmup_epochs = 2;
  c.warmup_start = 0.1;
  EXPECT_NEAR(engine::lr_at(c, 0), 0.01, 1e-12);
  EXPECT_NEAR(engine::lr_at(c, 1), 0.1 * 0.55 * (0.5 * (1 + std::cos(M_PI * 0.1))), 1e-12);
  EXPECT_THROW(engine::parse_schedule_kind("bogus"), util::FieldError);
  c.step_size = 0;
  c.kind = engine::ScheduleKind::kStep;
  try {
    engine::validate_schedule(c);
    FAIL() << "step_size 0 was accepted";
  } catch (const util::FieldError& e) {
    EXPECT_EQ(e.field(), "step_size");
    EXPECT_EQ(std::string(e.what()), "step_size must be positive, got 0");
  }
}

TEST(IdxReader, ReadsRawAndGzipIdentically) {
  for (bool gz : {false, true}) {
    auto dir = temp_dir(gz ? "idx_gz" : "idx_raw");
    write_idx(dir, 7, 5, 4, gz);
    const std::string sfx = gz ? ".gz" : "";
    auto ds = data::load_idx((dir / ("train-images-idx3-ubyte" + sfx)).string(),
                             (dir / ("train-labels-idx1-ubyte" + sfx)).string(), 10, "test");
    ASSERT_EQ(ds->size(), 7u);
    auto ex = ds->get(3);
    EXPECT_EQ(ex.image.sizes(), (std::vector<int64_t>{1, 5, 4}));
    EXPECT_EQ(ex.label, 3);
    EXPECT_EQ(ex.image[0][1][2].item<int>(), (3 + 1 * 4 + 2) % 256);
  }
}

TEST(IdxReader, BrokenFilesNameTheFileAndProblem) {
  auto dir = temp_dir("idx_bad");
  write_idx(dir, 6, 4, 4, false);
  const auto images = (dir / "train-images-idx3-ubyte").string();
  const auto labels = (dir / "train-labels-idx1-ubyte").string();
  auto load = [&] { data::load_idx(images, labels, 10, "t"); };
  {  // truncated image file
    fs::resize_file(images, fs::file_size(images) - 5);
    auto msg = error_of(load);
    EXPECT_NE(msg.find(images), std::string::npos) << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  }
  write_idx(dir, 6, 4, 4, false);
  {  // wrong magic
    std::fstream f(images, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f.put(0x01);
  }
  EXPECT_NE(error_of(load).find("wrong magic"), std::string::npos);
  write_idx(dir, 12, 4, 4, false, 13);  // labels up to 11 with 10 classes
  auto msg = error_of(load);
  EXPECT_NE(msg.find("label 10 at index 10"), std::string::npos) << msg;
  write_idx(dir, 6, 4, 4, false);
  {  // label count disagrees
    std::string lab;
    put_be32(lab, 0x801);
    put_be32(lab, 5);
    lab.append(5, '\1');
    std::ofstream(labels, std::ios::binary).write(lab.data(), static_cast<std::streamsize>(lab.size()));
  }
  msg = error_of(load);
  EXPECT_NE(msg.find("holds 6 images but"), std::string::npos) << msg;
  EXPECT_NE(
      error_of([&] { data::load_idx((dir / "missing").string(), labels, 10, "t"); }).find("cannot open"),
      std::string::npos);
  {  // corrupt gzip
    std::ofstream(images + ".gz", std::ios::binary) << std::string("\x1f\x8b\x08\x00garbage-garbage", 19);
    msg = error_of([&] { data::load_idx(images + ".gz", labels, 10, "t"); });
    EXPECT_NE(msg.find(".gz"), std::string::npos) << msg;
  }
}

TEST(Loader, OrderDependsOnlyOnSeedAndEpoch) {
  data::SyntheticOptions so;
  so.size = 100;
  auto ds = data::make_synthetic(so);
  std::vector<data::Transform> tf = {data::random_crop(28, 2), data::horizontal_flip()};
  data::LoaderOptions a;
  a.batch_size = 16;
  a.seed = 7;
  a.workers = 0;
  data::LoaderOptions b = a;
  b.workers = 3;
  b.prefetch = 2;
  data::DataLoader la(ds, tf, a), lb(ds, tf, b);
  EXPECT_EQ(la.epoch_order(3), lb.epoch_order(3));
  EXPECT_NE(la.epoch_order(3), la.epoch_order(4));
  for (int64_t epoch : {0, 1}) {
    la.start_epoch(epoch);
    lb.start_epoch(epoch);
    size_t batches = 0;
    while (auto x = la.next()) {
      auto y = lb.next();
      ASSERT_TRUE(y.has_value());
      EXPECT_TRUE(torch::equal(x->images, y->images));
      EXPECT_TRUE(torch::equal(x->labels, y->labels));
      ++batches;
    }
    EXPECT_FALSE(lb.next().has_value());
    EXPECT_EQ(batches, 7u);  // 100 / 16, last partial
  }
  // Resuming mid-epoch yields exactly the remaining batches.
  la.start_epoch(1, 5);
  lb.start_epoch(1);
  for (int i = 0; i < 5; ++i) lb.next();
  auto x = la.next(), y = lb.next();
  EXPECT_TRUE(torch::equal(x->images, y->images));
}

TEST(Loader, ShardsAreDisjointAndCoverTheEpoch) {
  data::SyntheticOptions so;
  so.size = 50;
  auto ds = data::make_synthetic(so);
  std::vector<int64_t> all;
  for (int rank = 0; rank < 3; ++rank) {
    data::LoaderOptions o;
    o.rank = rank;
    o.world_size = 3;
    o.pad_shards = false;
    o.workers = 0;
    data::DataLoader l(ds, {}, o);
    auto part = l.epoch_order(2);
    all.insert(all.end(), part.begin(), part.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expected(50);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(all, expected);
}

engine::TrainConfig tiny_run(const std::string& dir) {
  auto c = test::tiny_run_config(dir);
  c.data.synthetic_size = 320;
  c.run.epochs = 3;
  c.run.workers = 2;
  return c;
}

TEST(Trainer, ResumeAfterStopMatchesUninterruptedRun) {
  auto full_dir = temp_dir("full"), cut_dir = temp_dir("cut");
  auto full = engine::train(tiny_run(full_dir.string()));
  ASSERT_EQ(full.history.size(), 3u);
  EXPECT_FALSE(full.stopped_early);

  // 10 batches per epoch: stops inside the second epoch.
  auto [first, resumed] = test::train_stopped_and_resumed(tiny_run(cut_dir.string()), 14);
  EXPECT_TRUE(first.stopped_early);
  ASSERT_EQ(first.history.size(), 1u);
  ASSERT_EQ(resumed.history.size(), 3u);
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_NEAR(resumed.history[e].train_loss, full.history[e].train_loss, 1e-5) << "epoch " << e + 1;
    EXPECT_NEAR(resumed.history[e].val_loss, full.history[e].val_loss, 1e-5) << "epoch " << e + 1;
    EXPECT_DOUBLE_EQ(resumed.history[e].val_top1, full.history[e].val_top1) << "epoch " << e + 1;
  }
  // The synthetic task is learnable: the run gets far above chance (10 %).
  EXPECT_GT(full.history.back().val_top1, 40.0);
  EXPECT_TRUE(fs::exists(cut_dir / "metrics.jsonl"));
  EXPECT_TRUE(fs::exists(cut_dir / "config.json"));
  EXPECT_TRUE(fs::exists(cut_dir / "best.ckpt"));
}

// --time-budget: the schedule is fitted once to the budget and a resumed run keeps that length.
TEST(Trainer, TimeBudgetFitsTheScheduleAndAResumeKeepsIt) {
  auto dir = temp_dir("budget");
  auto c = tiny_run(dir.string());
  c.run.epochs = 1000;              // far more than 6 seconds allow
  c.run.time_budget_minutes = 0.1;  // 6 s, the whole run
  const auto start = std::chrono::steady_clock::now();
  // The fit happens at step 25 and always plans at least one more step, so a stop at step 25 cuts
  // the run short however slow (or busy) the machine is.
  auto [first, resumed] = test::train_stopped_and_resumed(c, 25);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(first.stopped_early);
  const auto state = engine::load_checkpoint(engine::last_checkpoint_path(dir.string()),
                                             *models::create_model("rla_resnet20",
                                                                   [] {
                                                                     models::ModelConfig m;
                                                                     m.in_channels = 1;
                                                                     return m;
                                                                   }()),
                                             nullptr);
  ASSERT_TRUE(resumed.final.has_value());
  ASSERT_TRUE(resumed.final->fitted_epochs.has_value());
  const double fitted = *resumed.final->fitted_epochs;
  EXPECT_GT(fitted, 2.5);  // more than the 25 steps taken before the stop
  EXPECT_LT(fitted, 1000.0);
  EXPECT_LE(fitted, state.fitted_epochs);  // the checkpoint holds what the resumed run kept
  EXPECT_GE(fitted, state.fitted_epochs);
  EXPECT_EQ(static_cast<double>(resumed.history.size()), std::ceil(fitted - 1e-9));
  // The cosine schedule ran to its end: the last step's rate is near zero.
  EXPECT_LT(resumed.history.back().lr, 0.05 * c.schedule.base_lr);
  // Two processes' worth of budget (the resumed one does not refit), with slack for a busy machine.
  EXPECT_LT(seconds, 2 * 2 * 6.0 + 10.0);
  // The result file says the schedule was fitted.
  std::ifstream result_file(engine::result_path(dir.string()));
  const auto saved = engine::run_result_from_json(nlohmann::json::parse(result_file));
  ASSERT_TRUE(saved.fitted_epochs.has_value());
  EXPECT_DOUBLE_EQ(*saved.fitted_epochs, fitted);
}

TEST(Trainer, NonFiniteLossStopsAndKeepsLastCheckpoint) {
  auto dir = temp_dir("nan");
  auto c = tiny_run(dir.string());
  c.run.epochs = 1;
  engine::train(c);  // a good checkpoint after epoch 1
  const auto before = fs::file_size(engine::last_checkpoint_path(dir.string()));
  c.run.epochs = 2;
  c.run.resume = true;
  c.schedule.base_lr = 1e12;
  c.schedule.kind = engine::ScheduleKind::kConstant;
  EXPECT_THROW(engine::train(c), engine::NonFiniteLoss);
  auto net = models::create_model("rla_resnet20", [] {
    models::ModelConfig m;
    m.in_channels = 1;
    return m;
  }());
  auto state = engine::load_checkpoint(engine::last_checkpoint_path(dir.string()), *net, nullptr);
  EXPECT_EQ(state.epochs_done, 1);
  EXPECT_EQ(fs::file_size(engine::last_checkpoint_path(dir.string())), before);
  // One batch per epoch: its loss is taken before the only step, so it stays finite; the step
  // (lr 1e30) makes every held-out logit overflow. Stopped by the held-out loss, not written.
  const auto one_step = temp_dir("nan-val");
  auto d = test::tiny_run_config(one_step.string());
  d.data.synthetic_size = 32;
  d.run.epochs = 2;
  d.schedule.base_lr = 1e30;
  d.schedule.kind = engine::ScheduleKind::kConstant;
  try {
    engine::train(d);
    ADD_FAILURE() << "a diverged model was trained on";
  } catch (const engine::NonFiniteLoss& e) {
    EXPECT_NE(std::string(e.what()).find("loss became"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("after epoch 1"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(engine::last_checkpoint_path(one_step.string())));
}

TEST(Checkpoint, InterruptedWriteLeavesPreviousLoadable) {
  auto dir = temp_dir("ckpt");
  auto net = models::create_model("resnet20");
  engine::TrainState s;
  s.epochs_done = 4;
  const auto path = (dir / "last.ckpt").string();
  engine::save_checkpoint(path, *net, nullptr, s);
  // A crash mid-write leaves only a partial temporary file behind.
  std::ofstream(path + ".tmp", std::ios::binary) << "PK\x03\x04 partial";
  auto other = models::create_model("resnet20");
  auto loaded = engine::load_checkpoint(path, *other, nullptr);
  EXPECT_EQ(loaded.epochs_done, 4);
  auto a = models::state_dict(*net), b = models::state_dict(*other);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  // A wrong model is refused with the differing keys named.
  auto wrong = models::create_model("resnet32");
  try {
    engine::load_checkpoint(path, *wrong, nullptr);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
  }
}

}  // namespace

namespace {

TEST(ValidationSplit, IsStratifiedDisjointCompleteAndFixedBySeed) {
  data::SyntheticOptions o;
  o.size = 1000;
  data::DatasetPtr base = data::make_synthetic(o);
  auto [rest, val] = data::stratified_split(base, 100, 0);
  ASSERT_EQ(rest->size() + val->size(), 1000u);
  ASSERT_EQ(val->size(), 100u);
  std::vector<int64_t> all(10, 0), held(10, 0);
  for (size_t i = 0; i < base->size(); ++i) ++all[static_cast<size_t>(base->label(i))];
  for (size_t i = 0; i < val->size(); ++i) ++held[static_cast<size_t>(val->label(i))];
  for (size_t c = 0; c < 10; ++c)  // proportional to the class size, within one image
    EXPECT_NEAR(static_cast<double>(held[c]), all[c] / 10.0, 1.0) << "class " << c;
  // Disjoint and complete: every image is in exactly one part (images are distinct here).
  auto key = [](const data::Example& e) {
    return e.image.to(torch::kFloat).sum().item<double>() * 31 + e.label;
  };
  std::multiset<double> parts, whole;
  for (size_t i = 0; i < rest->size(); ++i) parts.insert(key(rest->get(i)));
  for (size_t i = 0; i < val->size(); ++i) parts.insert(key(val->get(i)));
  for (size_t i = 0; i < base->size(); ++i) whole.insert(key(base->get(i)));
  EXPECT_EQ(parts, whole);
  // The same seed gives the same split; another seed another one.
  auto again = data::stratified_split(base, 100, 0).second;
  auto other = data::stratified_split(base, 100, 1).second;
  bool same = true, differs = false;
  for (size_t i = 0; i < 100; ++i) {
    same = same && torch::equal(again->get(i).image, val->get(i).image);
    differs = differs || !torch::equal(other->get(i).image, val->get(i).image);
  }
  EXPECT_TRUE(same);
  EXPECT_TRUE(differs);
  EXPECT_THROW(data::stratified_split(base, 0, 0), std::invalid_argument);
  EXPECT_THROW(data::stratified_split(base, 1000, 0), std::invalid_argument);
}

TEST(RunFolder, ConfigRoundTripsAndOldConfigsStillRead) {
  engine::TrainConfig c;
  c.model = "rla_resnet29";
  c.model_config.rla_channels = 8;
  c.model_config.aggregation = models::Aggregation::kSum;
  c.model_config.zero_init_residual = false;
  c.model_config.state_input = models::StateInput::kOutput;
  c.data.val_size = 5000;
  c.data.val_seed = 3;
  c.schedule.milestones = {3, 6};
  c.run.epochs = 7;
  c.exits.placement = models::ExitPlacement::kBlock;
  c.input_shape = {1, 28, 28};
  const auto j = engine::to_json(c);
  const auto back = engine::train_config_from_json(j);
  EXPECT_EQ(engine::to_json(back), j);
  EXPECT_EQ(back.model_config.state_input, models::StateInput::kOutput);
  EXPECT_EQ(back.model_config.zero_init_residual, false);
  EXPECT_FALSE(back.model_config.num_classes.has_value());
  // Before model_config existed, k and the aggregation sat at the top level.
  const auto old = engine::train_config_from_json(nlohmann::json{
      {"model", "rla_resnet20"}, {"rla_channels", 16}, {"aggregation", "concat"}, {"epochs", 3}});
  EXPECT_EQ(old.model_config.rla_channels, 16);
  EXPECT_EQ(old.model_config.aggregation, models::Aggregation::kConcat);
  EXPECT_EQ(old.run.epochs, 3);
  EXPECT_THROW(engine::train_config_from_json(nlohmann::json{{"epochs", 3}}), std::invalid_argument);
  EXPECT_THROW(engine::train_config_from_json(nlohmann::json{{"model", "x"}, {"epochs", "three"}}),
               std::invalid_argument);
}

TEST(Trainer, ValidationSplitPicksOnValidationAndTestsOnceAtTheEnd) {
  auto dir = temp_dir("val");
  auto c = tiny_run(dir.string());
  c.data.synthetic_size = 420;
  c.data.val_size = 100;
  c.model_config.state_input = models::StateInput::kOutput;
  auto r = engine::train(c);
  ASSERT_TRUE(r.final.has_value());
  ASSERT_TRUE(r.final->val_top1.has_value());
  EXPECT_DOUBLE_EQ(*r.final->val_top1, r.history.back().val_top1);
  const auto stored = engine::read_result(dir.string());
  ASSERT_TRUE(stored.has_value());
  EXPECT_DOUBLE_EQ(stored->test_top1, r.final->test_top1);
  EXPECT_GT(stored->test_top1, 20.0);  // learnt something (chance: 10 %)
  // The one test evaluation also left its per-image predictions, which agree with its top-1.
  auto data_config = c.data;
  data_config.seed = c.run.seed;  // as train() does
  auto bundle = data::open_data(data_config);
  std::ifstream in(engine::test_predictions_path(dir.string()));
  size_t n = 0, correct = 0;
  for (int64_t p; in >> p; ++n) correct += bundle.test->label(n) == p ? 1 : 0;
  ASSERT_EQ(n, bundle.test->size());
  EXPECT_NEAR(100.0 * static_cast<double>(correct) / static_cast<double>(n), stored->test_top1, 1e-9);
  // config.json records the resolved model configuration, so the run can be rebuilt from it.
  const auto cfg = engine::read_train_config(dir.string());
  EXPECT_EQ(cfg.model_config.state_input, models::StateInput::kOutput);
  EXPECT_EQ(cfg.model_config.rla_channels, 12);
  EXPECT_EQ(cfg.model_config.in_channels, 1);
  EXPECT_EQ(cfg.input_shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(engine::read_metrics(dir.string()).size(), 3u);
  inference::LoadOptions o;
  o.with_data = true;
  auto run = inference::load_model(dir.string(), o);
  EXPECT_EQ(run.data->val->size(), 100u);
  EXPECT_EQ(run.data->train->size(), 320u);
}

TEST(Checkpoint, AFailedLoadLeavesTheModelUntouched) {
  auto dir = temp_dir("untouched");
  auto small = models::create_model("rla_resnet20");
  const auto path = (dir / "x.ckpt").string();
  engine::save_checkpoint(path, *small, nullptr, engine::TrainState{});
  models::ModelConfig k;
  k.rla_channels = 16;  // the same keys, but the state convolutions have other shapes
  auto other = models::create_model("rla_resnet20", k);
  const auto before = models::state_dict(*other);
  std::vector<torch::Tensor> copies;
  for (const auto& [name, t] : before) copies.push_back(t.clone());
  EXPECT_THROW(engine::load_checkpoint(path, *other, nullptr), std::runtime_error);
  for (size_t i = 0; i < before.size(); ++i)
    EXPECT_TRUE(torch::equal(before[i].second, copies[i])) << before[i].first;
}

}  // namespace
