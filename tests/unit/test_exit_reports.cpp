// Early-exit reports and feature-map grids on a tiny run trained jointly with exit heads on
// synthetic data: the depth sweep and the dynamic sweep agree with each other and with
// exit_macs (tau = 1: the final head's accuracy at the backbone's cost; tau = 0: the first exit's
// cost), CSV files have the documented shape, post-hoc training leaves the backbone untouched,
// and the feature-map grid has the size its layout promises.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "../support/test_util.h"
#include "../support/tiny_run.h"
#include "rla/data/image_io.h"
#include "rla/engine/checkpoint.h"
#include "rla/models/registry.h"
#include "rla/models/summary.h"
#include "rla/plot/plot.h"
#include "rla/tasks/exit_reports.h"
#include "rla/tasks/feature_maps.h"

namespace {

using namespace rla;
namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("rla_exit_reports_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

engine::TrainConfig tiny_exit_run(const std::string& dir) {
  auto c = test::tiny_run_config(dir);
  c.data.synthetic_size = 128;
  c.run.epochs = 1;
  c.run.workers = 1;
  c.exits.placement = models::ExitPlacement::kBlock;
  c.exits.weight = 0.5;
  return c;
}

// One joint run shared by the tests of this file (trained once: ~5 s on one core).
const std::string& joint_run() {
  static const std::string dir = [] {
    const auto d = scratch("joint").string();
    engine::train(tiny_exit_run(d));
    return d;
  }();
  return dir;
}

// A run through the one loader, eager, with its test data (and exit heads when asked).
inference::ModelBundle load_run(const std::string& run, bool with_exits, size_t limit_test = 0) {
  inference::LoadOptions o;
  o.execution = inference::Execution::kEager;
  o.with_exits = with_exits;
  o.with_data = true;
  o.limit_test = limit_test;
  return inference::load_model(run, o);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(ExitReports, SweepsAgreeWithEachOtherAndWithExitMacs) {
  torch::set_num_threads(1);
  auto m = load_run(joint_run(), /*with_exits=*/true, /*limit_test=*/48);
  ASSERT_TRUE(m.heads);
  EXPECT_EQ(m.heads->size(), 8u);
  data::LoaderOptions lo;
  lo.batch_size = 20;  // 48 = 20 + 20 + 8: a ragged last batch
  lo.shuffle = false;
  lo.workers = 0;
  data::DataLoader loader(m.data->test, m.data->eval_transforms, lo);
  const auto batches = tasks::collect_batches(loader);
  const auto chw = m.data->input_shape;
  const auto macs = inference::exit_macs(*m.net, *m.heads, chw);

  const auto depth = tasks::depth_sweep(*m.net, *m.heads, batches, chw);
  ASSERT_EQ(depth.rows.size(), 9u);
  EXPECT_EQ(depth.samples, 48);
  EXPECT_EQ(depth.easy + depth.hard, 48);
  EXPECT_GE(depth.easy, 24);  // ">= median" keeps at least half
  for (size_t j = 0; j < depth.rows.size(); ++j) {
    EXPECT_EQ(depth.rows[j].macs, macs[j]);
    EXPECT_EQ(depth.rows[j].depth, j + 1);  // block exits after blocks 1..8, the final head after 9
    // The overall error is the easy/hard errors weighted by their counts.
    const double mixed = (depth.rows[j].error_easy * static_cast<double>(depth.easy) +
                          depth.rows[j].error_hard * static_cast<double>(depth.hard)) /
                         48.0;
    EXPECT_NEAR(depth.rows[j].error_all, mixed, 1e-9);
  }

  const auto dyn = tasks::dynamic_sweep(*m.net, *m.heads, batches, {0.0, 0.9, 1.0}, chw);
  ASSERT_EQ(dyn.rows.size(), 3u);
  EXPECT_EQ(dyn.batch_size, 20);
  EXPECT_EQ(dyn.samples, 48);
  for (const auto& r : dyn.rows) {
    ASSERT_EQ(r.exit_share.size(), 9u);
    EXPECT_NEAR(std::accumulate(r.exit_share.begin(), r.exit_share.end(), 0.0), 1.0, 1e-12) << r.tau;
    EXPECT_GT(r.ms_per_image, 0.0);
    EXPECT_GE(r.mean_macs, static_cast<double>(macs.front()));
    EXPECT_LE(r.mean_macs, static_cast<double>(macs.back()));
  }
  // tau = 0: everyone leaves at the first exit, at its prefix's cost, with its accuracy.
  EXPECT_DOUBLE_EQ(dyn.rows[0].exit_share[0], 1.0);
  EXPECT_DOUBLE_EQ(dyn.rows[0].mean_macs, static_cast<double>(macs.front()));
  EXPECT_NEAR(dyn.rows[0].accuracy, 100.0 - depth.rows.front().error_all, 1e-9);
  // tau = 1: nobody leaves early; the accuracy is the final head's and the cost the network's
  // alone, since no head is evaluated (the reports counted every head on the way once).
  EXPECT_DOUBLE_EQ(dyn.rows[2].exit_share.back(), 1.0);
  const auto plain = static_cast<double>(models::summarize(*m.net, chw).macs);
  EXPECT_DOUBLE_EQ(dyn.rows[2].mean_macs, plain);
  EXPECT_LT(plain, static_cast<double>(macs.back()));
  EXPECT_NEAR(dyn.rows[2].accuracy, 100.0 - depth.rows.back().error_all, 1e-9);

  // A progress line counts every batch the two sweeps pass, so its total (and ETA) is exact: the
  // final line (a file is not a terminal: plain lines) reads "exits <done>/<total> ...".
  {
    std::FILE* sink = std::tmpfile();
    ASSERT_NE(sink, nullptr);
    const std::vector<double> taus = {0.5, 1.0};
    const size_t total = batches.size() + tasks::dynamic_sweep_steps(batches.size(), taus.size(), 2);
    EXPECT_EQ(total, 3u + 2u * (1u + 2u * 3u));
    engine::Progress progress("exits", total, "img", sink);
    tasks::depth_sweep(*m.net, *m.heads, batches, chw, {}, &progress);
    tasks::dynamic_sweep(*m.net, *m.heads, batches, taus, chw, /*repeats=*/2, &progress);
    progress.finish();
    std::rewind(sink);
    std::string text;
    for (int c = std::fgetc(sink); c != EOF; c = std::fgetc(sink)) text += static_cast<char>(c);
    std::fclose(sink);
    const auto last = text.substr(text.rfind("exits "));
    EXPECT_EQ(last.rfind(fmt::format("exits {}/{} (100%)", total, total), 0), 0u) << last;
  }

  const auto dir = scratch("csv");
  tasks::write_depth_sweep_csv((dir / "d.csv").string(), depth);
  tasks::write_dynamic_sweep_csv((dir / "y.csv").string(), dyn);
  const auto d = read_lines((dir / "d.csv").string()), y = read_lines((dir / "y.csv").string());
  ASSERT_EQ(d.size(), 10u);
  EXPECT_EQ(d[0], "exit,depth,block_name,macs_per_image,error_all,error_easy,error_hard");
  EXPECT_EQ(d.back().rfind("final,9,", 0), 0u) << d.back();
  ASSERT_EQ(y.size(), 4u);
  EXPECT_EQ(y[0].rfind("tau,accuracy,mean_macs_per_image,ms_per_image,batch_size,share_exit_0,", 0), 0u);
  EXPECT_NE(y[0].find("share_exit_7,share_final"), std::string::npos);
  // Read back (what `rla exits --redraw` draws from): the same rows to the files' precision.
  const auto d2 = tasks::read_depth_sweep_csv((dir / "d.csv").string());
  ASSERT_EQ(d2.rows.size(), depth.rows.size());
  for (size_t i = 0; i < d2.rows.size(); ++i) {
    EXPECT_EQ(d2.rows[i].exit, depth.rows[i].exit);
    EXPECT_EQ(d2.rows[i].depth, depth.rows[i].depth);
    EXPECT_EQ(d2.rows[i].block_name, depth.rows[i].block_name);
    EXPECT_EQ(d2.rows[i].macs, depth.rows[i].macs);
    EXPECT_NEAR(d2.rows[i].error_all, depth.rows[i].error_all, 5e-5);
    EXPECT_NEAR(d2.rows[i].error_hard, depth.rows[i].error_hard, 5e-5);
  }
  const auto y2 = tasks::read_dynamic_sweep_csv((dir / "y.csv").string());
  ASSERT_EQ(y2.rows.size(), dyn.rows.size());
  EXPECT_EQ(y2.batch_size, dyn.batch_size);
  for (size_t i = 0; i < y2.rows.size(); ++i) {
    EXPECT_DOUBLE_EQ(y2.rows[i].tau, dyn.rows[i].tau);
    EXPECT_NEAR(y2.rows[i].accuracy, dyn.rows[i].accuracy, 5e-5);
    EXPECT_NEAR(y2.rows[i].mean_macs, dyn.rows[i].mean_macs, 0.5);
    ASSERT_EQ(y2.rows[i].exit_share.size(), dyn.rows[i].exit_share.size());
    EXPECT_NEAR(y2.rows[i].exit_share.back(), dyn.rows[i].exit_share.back(), 5e-6);
  }
  // A damaged file is named, with what is wrong in it.
  { std::ofstream((dir / "bad.csv").string()) << "exit,depth\n0,1,stages.0.0,12,x,1,2\n"; }
  try {
    tasks::read_depth_sweep_csv((dir / "bad.csv").string());
    FAIL() << "a CSV with a non-number was read";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("bad.csv: 'x' is not a number"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tasks::read_dynamic_sweep_csv((dir / "missing.csv").string()), std::invalid_argument);
  fs::remove_all(dir);
}

// Easy by agreement: a test image is easy when every reference run classifies it correctly; the
// final head's error on easy images is then 0 when the model is itself one of the references.
TEST(ExitReports, EasyByAgreementIsTheSameSamplesForEveryModel) {
  torch::set_num_threads(1);
  const auto other = scratch("other").string();
  auto c = test::tiny_run_config(other);
  c.data.synthetic_size = 128;
  c.run.epochs = 1;
  c.run.seed = 5;
  engine::train(c);
  const auto alone = tasks::easy_by_agreement({joint_run()}, 48);
  const auto both = tasks::easy_by_agreement({joint_run(), other}, 48);
  ASSERT_EQ(both.numel(), 48);
  // Adding a reference can only remove easy images.
  EXPECT_TRUE(both.logical_and(alone.logical_not()).sum().item<int64_t>() == 0);
  EXPECT_LE(both.sum().item<int64_t>(), alone.sum().item<int64_t>());

  auto m = load_run(joint_run(), /*with_exits=*/true, /*limit_test=*/48);
  data::LoaderOptions lo;
  lo.batch_size = 20;
  lo.shuffle = false;
  lo.workers = 0;
  data::DataLoader loader(m.data->test, m.data->eval_transforms, lo);
  const auto depth =
      tasks::depth_sweep(*m.net, *m.heads, tasks::collect_batches(loader), m.data->input_shape, alone);
  EXPECT_TRUE(depth.shared_easy);
  EXPECT_EQ(depth.easy, alone.sum().item<int64_t>());
  if (depth.easy > 0) {
    EXPECT_EQ(depth.rows.back().error_easy, 0.0);
  }
  if (depth.hard > 0) {
    EXPECT_EQ(depth.rows.back().error_hard, 100.0);
  }
  EXPECT_THROW(tasks::depth_sweep(*m.net, *m.heads, tasks::collect_batches(loader), m.data->input_shape,
                                  torch::ones({47}, torch::kBool)),
               std::invalid_argument);
  fs::remove_all(other);
}

TEST(ExitReports, RunExitReportsWritesTablesAndCharts) {
  if (!plot::png_charts_available()) GTEST_SKIP() << "no PLplot pngcairo driver";
  const auto dir = scratch("report");
  tasks::ExitReportConfig cfg;
  cfg.runs = {joint_run()};
  cfg.taus = {0.5, 1.0};
  cfg.out_dir = dir.string();
  cfg.batch_size = 32;
  cfg.limit_test = 32;
  const auto reports = tasks::run_exit_reports(cfg);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].label, "rla_resnet20 (exits read x, h)");
  for (const char* f : {"rla_resnet20-both_depth.csv", "rla_resnet20-both_dynamic.csv", "depth_sweep.png",
                        "dynamic.png", "config.json"})
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  EXPECT_NE(tasks::format_depth_table(reports[0]).find("final"), std::string::npos);
  // Drawn again from the folder alone: the same series, the charts written anew.
  fs::remove(dir / "depth_sweep.png");
  fs::remove(dir / "dynamic.png");
  const auto redrawn = tasks::redraw_exit_charts(dir.string());
  ASSERT_EQ(redrawn.size(), 1u);
  EXPECT_EQ(redrawn[0].label, reports[0].label);
  EXPECT_EQ(redrawn[0].depth.rows.size(), reports[0].depth.rows.size());
  EXPECT_EQ(redrawn[0].dynamic.rows.size(), reports[0].dynamic.rows.size());
  EXPECT_EQ(redrawn[0].dynamic.repeats, reports[0].dynamic.repeats);
  EXPECT_TRUE(fs::exists(dir / "depth_sweep.png"));
  EXPECT_TRUE(fs::exists(dir / "dynamic.png"));
  // The command: --redraw alone; with --out, or with nothing, one line and a non-zero exit.
  auto r = rla::test::run_rla("exits --redraw " + dir.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("again (1 series)"), std::string::npos) << r.output;
  for (const std::string bad :
       {"exits --redraw " + dir.string() + " --out " + dir.string(), std::string("exits")}) {
    r = rla::test::run_rla(bad);
    EXPECT_NE(r.exit_code, 0) << bad << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << bad << ": " << r.output;
  }
  fs::remove(dir / "rla_resnet20-both_dynamic.csv");
  EXPECT_THROW(tasks::redraw_exit_charts(dir.string()), std::invalid_argument);
  fs::remove_all(dir);
}

TEST(ExitReports, RefusesCheckpointsWithoutExitHeads) {
  const auto dir = scratch("plain");
  models::ModelConfig mc;
  mc.in_channels = 1;
  auto net = models::create_model("resnet20", mc);
  engine::TrainState st;
  st.config_json = R"({"model": "resnet20", "dataset": "synthetic"})";
  const auto ckpt = (dir / "plain.ckpt").string();
  engine::save_checkpoint(ckpt, *net, nullptr, st);
  try {
    load_run(ckpt, /*with_exits=*/true);
    FAIL() << "a checkpoint without exit heads was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no exit heads"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(load_run(ckpt, /*with_exits=*/false));
  fs::remove_all(dir);
}

TEST(ExitReports, PostHocTrainingChangesOnlyTheHeads) {
  const auto dir = scratch("posthoc");
  auto c = tiny_exit_run(dir.string());
  c.run.init_checkpoint = engine::last_checkpoint_path(joint_run());
  c.exits.freeze_backbone = true;
  c.exits.placement = models::ExitPlacement::kStage;
  c.exits.projection = 8;  // capacity-matched heads load back with their projection
  c.run.max_steps = 2;
  engine::train(c);
  auto before = load_run(joint_run(), /*with_exits=*/true);
  auto after = load_run(dir.string(), /*with_exits=*/true);
  EXPECT_EQ(after.heads->size(), 2u);  // stage placement: after blocks 3 and 6
  EXPECT_EQ(after.heads->projection(), 8);
  const auto a = models::state_dict(*before.net), b = models::state_dict(*after.net);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  fs::remove_all(dir);
}

TEST(FeatureMaps, ColourMapAndNormalisation) {
  const auto v = torch::tensor({0.0f, 0.5f, 1.0f}).view({1, 3});
  const auto rgb = tasks::jet_colors(v);
  EXPECT_LT(rgb[0][0][0].item<float>(), 0.1f);  // 0: blue
  EXPECT_GT(rgb[2][0][0].item<float>(), 0.4f);
  EXPECT_GT(rgb[0][0][2].item<float>(), 0.4f);  // 1: red
  EXPECT_LT(rgb[2][0][2].item<float>(), 0.1f);
  EXPECT_TRUE(torch::equal(tasks::normalize_map(torch::full({4, 4}, 3.0f)), torch::zeros({4, 4})));
  const auto n = tasks::normalize_map(torch::arange(16, torch::kFloat).view({4, 4}));
  EXPECT_FLOAT_EQ(n.min().item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(n.max().item<float>(), 1.0f);
}

TEST(FeatureMaps, GridHasTheSizeOfItsLayout) {
  if (!plot::png_charts_available()) GTEST_SKIP() << "no PLplot pngcairo driver";
  const auto dir = scratch("grid");
  tasks::VisualizeConfig cfg;
  cfg.runs = {joint_run()};
  cfg.dataset_indices = {0, 3};
  cfg.depths = "1,5";
  cfg.tile = 64;
  cfg.out = (dir / "grid.png").string();
  const auto grid = tasks::run_visualize(cfg);
  ASSERT_EQ(grid.tiles.size(), 2u);
  ASSERT_EQ(grid.tiles[0].size(), 5u);  // input, then x and h at two depths
  EXPECT_EQ(grid.column_labels[4], "block 5: h");
  const auto [w, h] = tasks::tile_grid_size(grid);
  const auto info = data::read_image_info(cfg.out);
  EXPECT_EQ(info.width, w);
  EXPECT_EQ(info.height, h);
  EXPECT_GE(w, 5 * 64);
  // The maps of a plain net have no state column; "stages" picks the last block of each stage.
  models::ModelConfig mc;
  mc.in_channels = 1;
  auto plain = models::create_model("resnet20", mc);
  EXPECT_EQ(tasks::parse_depths("stages", *plain), (std::vector<size_t>{3, 6, 9}));
  const auto maps = tasks::activation_maps(*plain, torch::randn({2, 1, 28, 28}), {2, 9});
  EXPECT_FALSE(maps[0].h.defined());
  EXPECT_EQ(maps[1].x.sizes(), (std::vector<int64_t>{2, 7, 7}));
  EXPECT_THROW(tasks::parse_depths("0,4", *plain), std::invalid_argument);
  fs::remove_all(dir);
}

}  // namespace
