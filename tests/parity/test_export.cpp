// TorchScript export (io/torchscript.h, `rla export`): one registry entry per structural variant is
// exported with non-trivial BatchNorm statistics, then loaded back by LibTorch (torch::jit::load)
// and by Python (torch.jit.load, tests/parity/python/check_torchscript.py), both at a batch size
// the trace did not see; the logits must equal the eager forward within 1e-4 of the largest logit.
#include <gtest/gtest.h>
#include <torch/script.h>

#include <filesystem>

#include "../support/batchnorm.h"
#include "../support/test_util.h"
#include "rla/io/pytorch_archive.h"
#include "rla/io/state_dict.h"
#include "rla/io/torchscript.h"
#include "rla/models/layers.h"
#include "rla/models/registry.h"

namespace {

using rla::test::randomize_batchnorms;

namespace fs = std::filesystem;
using namespace rla;

const char* kPython = "/usr/bin/python3";

fs::path temp_dir(const std::string& name) {
  return test::scratch_dir("export", name);
}

struct Case {
  std::string file, model;
  int64_t channels, size;
  models::ModelConfig config;
  bool fold = true;
};

models::ModelConfig aggregation(models::Aggregation a) {
  models::ModelConfig c;
  c.aggregation = a;
  return c;
}

TEST(TorchScriptExport, EveryStructuralVariantLoadsInLibTorchAndPython) {
  const std::vector<Case> cases = {
      {"resnet29", "resnet29", 1, 28, {}},
      {"rla_resnet20", "rla_resnet20", 1, 28, {}},
      {"rla_resnet20_keep_bn", "rla_resnet20", 1, 28, {}, false},
      {"rla_resnet20_sum", "rla_resnet20", 3, 32, aggregation(models::Aggregation::kSum)},
      {"rla_resnet20_concat", "rla_resnet20", 3, 32, aggregation(models::Aggregation::kConcat)},
      {"rla_resnet20_s", "rla_resnet20_s", 3, 32, {}},
      {"rla_resnet50", "rla_resnet50", 3, 64, {}},
      {"rla_resnet50_se", "rla_resnet50_se", 3, 64, {}},
      {"rla_resnext50_32x4d", "rla_resnext50_32x4d", 3, 64, {}},
      {"mobilenet_v2", "mobilenet_v2", 3, 64, {}},
      {"dsrla_mobilenetv2_k32_eca", "dsrla_mobilenetv2_k32_eca", 3, 64, {}},
      {"rla_densenet40", "rla_densenet40", 3, 32, {}},
  };
  const auto dir = temp_dir("variants");
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    auto config = c.config;
    config.in_channels = c.channels;
    torch::manual_seed(5);
    auto net = models::create_model(c.model, config);
    randomize_batchnorms(*net);
    net->eval();
    const auto path = (dir / (c.file + ".ts.pt")).string();
    io::TorchScriptOptions options;
    options.input_shape = {c.channels, c.size, c.size};
    options.fold_batchnorm = c.fold;
    io::export_torchscript(*net, path, options);
    torch::NoGradGuard no_grad;
    const auto x = torch::randn({3, c.channels, c.size, c.size});  // the trace ran at batch 2
    const auto want = net->forward(x);
    auto loaded = torch::jit::load(path);
    const auto got = loaded.forward({x}).toTensor();
    ASSERT_EQ(got.sizes(), want.sizes());
    const double rel = (got - want).abs().max().item<double>() / want.abs().max().item<double>();
    EXPECT_LE(rel, 1e-4);
    auto io = io::PyValue::dict();
    io.mutable_dict().set(io::PyValue::string("input"), io::PyValue::tensor(x));
    io.mutable_dict().set(io::PyValue::string("logits"), io::PyValue::tensor(want));
    io::write_pytorch_file((dir / (c.file + ".io.pt")).string(), io);
  }
  if (std::system((std::string(kPython) + " -c 'import torch' >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << kPython << " cannot import torch";
  const auto cmd = std::string(kPython) + " " + RLA_SOURCE_DIR +
                   "/tests/parity/python/check_torchscript.py " + dir.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  fs::remove_all(dir);
}

TEST(TorchScriptExport, CommandExportsARunAndRejectsBadInputInOneLine) {
  const auto dir = temp_dir("cli");
  const auto run = (dir / "run").string();
  auto r = test::run_rla(
      "--threads 1 train --dataset synthetic --limit-train 64 --limit-test 32 --epochs 1 "
      "--batch-size 32 -q --out " +
      run);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto out = (dir / "model.ts.pt").string();
  r = test::run_rla("--threads 1 export " + run + " -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto module = torch::jit::load(out);
  EXPECT_EQ(module.forward({torch::rand({4, 1, 28, 28})}).toTensor().sizes(), torch::IntArrayRef({4, 10}));
  // The run kept no weight average: asking for it is a one-line error.
  const auto no_ema =
      test::run_rla("--threads 1 export " + run + " --weights ema -o " + (dir / "x.pt").string());
  EXPECT_NE(no_ema.exit_code, 0);
  EXPECT_NE(no_ema.output.find("no weight average"), std::string::npos) << no_ema.output;
  EXPECT_FALSE(fs::exists(dir / "x.pt"));
  for (const std::string& bad :
       {"export " + run + " -f onnx -o " + (dir / "x.onnx").string(),
        "export " + (dir / "nosuch").string() + " -o " + (dir / "x.pt").string(),
        "export " + run + "/best_model.pt -o " + (dir / "x.pt").string(),     // a state dict without --model
        "export " + run + " --model resnet20 -o " + (dir / "x.pt").string(),  // another model
        "export " + run + " --input 1,28 -o " + (dir / "x.pt").string()}) {
    const auto b = test::run_rla("--threads 1 " + bad);
    EXPECT_NE(b.exit_code, 0) << bad;
    EXPECT_EQ(std::count(b.output.begin(), b.output.end(), '\n'), 1) << bad << "\n" << b.output;
    EXPECT_FALSE(fs::exists(dir / "x.pt")) << bad;
    EXPECT_FALSE(fs::exists(dir / "x.onnx")) << bad;
  }
  fs::remove_all(dir);
}

}  // namespace
