// int8 post-training quantization (inference/quantized.h, `rla quantize`, `eval/infer --int8`):
// the int8 forward against the float one on a fixed batch, save → load equality, and the
// command's round trip and one-line errors on a small trained run.
#include <gtest/gtest.h>

#include <filesystem>

#include "../support/batchnorm.h"
#include "../support/test_util.h"
#include "../support/tiny_run.h"
#include "rla/inference/quantized.h"
#include "rla/io/model_io.h"
#include "rla/models/registry.h"

namespace {

namespace fs = std::filesystem;
using namespace rla;

TEST(Int8, MatchesTheFloatForwardOnAFixedBatchAndSurvivesSaveAndLoad) {
  torch::manual_seed(3);
  for (const std::string model : {"resnet20", "rla_resnet20"}) {
    SCOPED_TRACE(model);
    models::ModelConfig config;
    config.in_channels = 3;
    auto net = models::create_model(model, config);
    test::randomize_batchnorms(*net);
    net->eval();
    inference::QuantizedNetwork q(*net, {3, 32, 32});
    for (int i = 0; i < 4; ++i) q.calibrate(torch::randn({16, 3, 32, 32}));
    q.finalize();
    EXPECT_EQ(q.calibration_images(), 64);
    const auto counts = q.counts();
    EXPECT_EQ(counts.int8_convolutions, model == "resnet20" ? 21 : 39);
    EXPECT_GT(counts.fused_relus, 0);
    EXPECT_EQ(counts.int8_adds, 9);
    EXPECT_EQ(counts.int8_concats, model == "resnet20" ? 0 : 9);

    torch::NoGradGuard no_grad;
    const auto x = torch::randn({8, 3, 32, 32});
    const auto want = net->forward(x);
    const auto got = q.forward(x);
    ASSERT_EQ(got.sizes(), want.sizes());
    // uint8 activations over ~20 layers: a few percent of the logit range, never garbage.
    const double rel = ((got - want).abs().max() / want.abs().max()).item<double>();
    EXPECT_LT(rel, 0.08) << "relative error " << rel;
    EXPECT_GT(rel, 0.0);  // it did run in int8

    const auto dir = test::scratch_dir("int8", model);
    const auto path = (dir / "m.int8.pt").string();
    q.save(path, model);
    EXPECT_EQ(inference::QuantizedNetwork::describe(path).first, model);
    auto loaded = inference::QuantizedNetwork::load(path, *net, model);
    EXPECT_TRUE(torch::equal(loaded.forward(x), got));  // the same int8 weights and scales
    // The file holds int8 weights: about a quarter of the float parameters' bytes.
    int64_t params = 0;
    for (const auto& p : net->parameters()) params += p.numel();
    EXPECT_LT(static_cast<double>(fs::file_size(path)), 0.45 * 4.0 * static_cast<double>(params));
    // Another model's structure is refused by name.
    auto other = models::create_model(model == "resnet20" ? "rla_resnet20" : "resnet20", config);
    EXPECT_THROW(inference::QuantizedNetwork::load(path, *other), std::invalid_argument);
    fs::remove_all(dir);
  }
}

TEST(Int8, CommandQuantizesARunThatEvalAndInferRun) {
  const auto dir = test::scratch_dir("int8", "cli");
  const auto run = (dir / "run").string();
  auto r = test::run_rla(
      "--threads 1 train --dataset synthetic --limit-train 256 --limit-test 128 --epochs 2 --batch-size 32 "
      "-q "
      "--out " +
      run);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_rla("--threads 1 quantize " + run + " --calib 64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(fs::path(run) / "model.int8.pt")) << r.output;
  const auto top1 = [](const std::string& json) {
    const auto at = json.rfind("\"top1\": ");
    return at == std::string::npos ? -1.0 : std::stod(json.substr(at + 8));
  };
  const auto fp32 = test::run_rla("--threads 1 eval " + run + " --json");
  const auto int8 = test::run_rla("--threads 1 eval " + run + " --int8 --json");
  ASSERT_EQ(fp32.exit_code, 0) << fp32.output;
  ASSERT_EQ(int8.exit_code, 0) << int8.output;
  EXPECT_NE(int8.output.find("\"int8\": true"), std::string::npos);
  EXPECT_NEAR(top1(int8.output), top1(fp32.output), 3.0);  // 128 test images: 3 points = 4 images

  const auto input = (dir / "x.pt").string(), logits = (dir / "y.pt").string();
  io::write_tensor_file(input, torch::rand({5, 1, 28, 28}));
  r = test::run_rla("--threads 1 infer -w " + run + " -i " + input + " -o " + logits + " --int8");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(io::read_tensor_file(logits).sizes(), torch::IntArrayRef({5, 10}));

  const auto other = (dir / "other").string();
  r = test::run_rla(
      "--threads 1 train --dataset synthetic --model resnet20 --limit-train 64 --limit-test 32 "
      "--epochs 1 --batch-size 32 -q --out " +
      other);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto bad_out = (dir / "bad.int8.pt").string();
  for (const std::string& bad :
       {"quantize " + run + " --calib 8 -o " + bad_out,       // too few calibration images
        "quantize " + run + " --calib 100000 -o " + bad_out,  // more than the training split
        "quantize " + (dir / "nosuch").string() + " -o " + bad_out,
        "eval " + other + " --int8",                                        // never quantized
        "eval " + other + " --int8 --int8-file " + run + "/model.int8.pt",  // another model's file
        "eval " + run + " --int8 --fast",
        "infer -w " + run + " -i " + input + " -o " + logits + " --int8-file " + run + "/model.int8.pt"}) {
    const auto b = test::run_rla("--threads 1 " + bad);
    EXPECT_NE(b.exit_code, 0) << bad;
    EXPECT_EQ(std::count(b.output.begin(), b.output.end(), '\n'), 1) << bad << "\n" << b.output;
    EXPECT_FALSE(fs::exists(bad_out)) << bad;
    // The library names its field (calibration_images); the user reads the flag they typed.
    if (bad.find("--calib ") != std::string::npos) {
      EXPECT_NE(b.output.find("--calib "), std::string::npos) << b.output;
    }
    if (bad == "eval " + other + " --int8") {
      EXPECT_NE(b.output.find("rla quantize"), std::string::npos) << b.output;
    }
  }
  fs::remove_all(dir);
}

}  // namespace
