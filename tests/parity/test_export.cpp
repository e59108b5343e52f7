// Model export (deploy/export.h, `rla export`): one registry entry per structural variant is exported
// with non-trivial BatchNorm statistics, at a batch size the trace did not see, then run by
//   * TorchScript: LibTorch (torch::jit::load) and Python (tests/parity/python/check_torchscript.py);
//     the logits must equal the eager forward within 1e-4 of the largest logit;
//   * ONNX: ONNX's checker, OpenCV's dnn (tests/parity/python/check_onnx.py) and ONNX Runtime
//     (tests/parity/js/check_onnx.js); the logits must equal the eager forward within 1e-4.
#include <gtest/gtest.h>
#include <torch/csrc/jit/ir/irparser.h>
#include <torch/script.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "../support/batchnorm.h"
#include "../support/test_util.h"
#include "rla/deploy/export.h"
#include "rla/io/pytorch_archive.h"
#include "rla/io/state_dict.h"
#include "rla/models/backbone.h"
#include "rla/models/layers.h"
#include "rla/models/registry.h"

namespace {

using rla::test::kPython;
using rla::test::python_has;
using rla::test::randomize_batchnorms;

namespace fs = std::filesystem;
using namespace rla;

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

// One registry entry per structural variant.
std::vector<Case> variants() {
  return {
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
}

models::Network variant_network(const Case& c) {
  auto config = c.config;
  config.in_channels = c.channels;
  torch::manual_seed(5);
  auto net = models::create_model(c.model, config);
  randomize_batchnorms(*net);
  net->eval();
  return net;
}

deploy::ExportOptions export_options(const Case& c) {
  deploy::ExportOptions options;
  options.input_shape = {c.channels, c.size, c.size};
  options.fold_batchnorm = c.fold;
  return options;
}

TEST(TorchScriptExport, EveryStructuralVariantLoadsInLibTorchAndPython) {
  const auto dir = temp_dir("variants");
  for (const auto& c : variants()) {
    SCOPED_TRACE(c.file);
    auto net = variant_network(c);
    const auto path = (dir / (c.file + ".ts.pt")).string();
    deploy::export_torchscript(*net, path, export_options(c));
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
  if (!python_has("torch")) GTEST_SKIP() << kPython << " cannot import torch";
  const auto cmd = std::string(kPython) + " " + RLA_SOURCE_DIR +
                   "/tests/parity/python/check_torchscript.py " + dir.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  fs::remove_all(dir);
}

/// Writes x and the logits as raw float32 files beside their shapes (DIR/<name>.shapes: one line of
/// dims each), as tests/parity/python/check_onnx.py and tests/parity/js/check_onnx.js read them.
void write_case(const fs::path& dir, const std::string& name, const torch::Tensor& x,
                const torch::Tensor& logits) {
  std::ofstream shapes(dir / (name + ".shapes"));
  for (const auto& [suffix, t] : {std::pair{".input.bin", x}, std::pair{".logits.bin", logits}}) {
    const auto c = t.contiguous().to(torch::kFloat);
    std::ofstream(dir / (name + suffix), std::ios::binary)
        .write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
    shapes << fmt::format("{}\n", fmt::join(c.sizes(), " "));
  }
}

/// The node_modules folder holding onnxruntime-node (scripts/install-onnxruntime.sh), or "".
std::string onnxruntime_modules() {
  std::string dir;
  if (const char* env = std::getenv("RLA_ONNXRUNTIME_MODULES")) {
    dir = env;
  } else if (const char* home = std::getenv("HOME")) {
    dir = std::string(home) + "/.cache/rla/onnxruntime/node_modules";
  }
  const bool found = !dir.empty() && fs::exists(fs::path(dir) / "onnxruntime-node") &&
                     std::system("node --version >/dev/null 2>&1") == 0;
  return found ? dir : "";
}

/// Runs every ONNX file of `dir` in ONNX Runtime (tests/parity/js/check_onnx.js) against the
/// outputs written beside it, or notes in `missing` that ONNX Runtime is not installed.
void check_in_onnxruntime(const fs::path& dir, std::vector<std::string>& missing) {
  if (const auto modules = onnxruntime_modules(); !modules.empty()) {
    const auto cmd =
        fmt::format("node {}/tests/parity/js/check_onnx.js {} {}", RLA_SOURCE_DIR, dir.string(), modules);
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  } else {
    missing.push_back("ONNX Runtime (scripts/install-onnxruntime.sh)");
  }
}

TEST(OnnxExport, EveryStructuralVariantRunsInOpenCvAndOnnxRuntime) {
  const auto dir = temp_dir("onnx");
  for (const auto& c : variants()) {
    SCOPED_TRACE(c.file);
    auto net = variant_network(c);
    deploy::export_onnx(*net, (dir / (c.file + ".onnx")).string(), export_options(c));
    torch::NoGradGuard no_grad;
    const auto x = torch::randn({3, c.channels, c.size, c.size});  // the trace ran at batch 2
    write_case(dir, c.file, x, net->forward(x));
  }
  std::vector<std::string> missing;
  if (python_has("onnx, cv2")) {
    const auto cmd =
        fmt::format("{} {}/tests/parity/python/check_onnx.py {}", kPython, RLA_SOURCE_DIR, dir.string());
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  } else {
    missing.push_back("ONNX checker and OpenCV (python3-onnx, python3-opencv)");
  }
  check_in_onnxruntime(dir, missing);
  fs::remove_all(dir);
  if (!missing.empty()) GTEST_SKIP() << "not checked in: " << fmt::format("{}", fmt::join(missing, ", "));
}

// The backbone export (`rla export --features`): rla_resnet50's stage outputs C2..C5 and its state h
// as five named outputs, run by ONNX Runtime and by TorchScript, equal to forward_features.
TEST(OnnxExport, BackboneFeaturesRunInOnnxRuntimeAndTorchScript) {
  const auto dir = temp_dir("features");
  const Case c{"rla_resnet50_features", "rla_resnet50", 3, 64, {}};
  auto net = variant_network(c);
  auto options = export_options(c);
  options.features = true;
  options.with_state = true;
  deploy::export_onnx(*net, (dir / (c.file + ".onnx")).string(), options);
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({3, 3, 64, 64});
  const auto want = models::forward_features(*net, x, models::BackboneOptions().with_state(true));
  const std::vector<std::string> names{"C2", "C3", "C4", "C5", "h"};
  ASSERT_EQ(want.size(), names.size());
  {
    std::ofstream shapes(dir / (c.file + ".shapes")), outputs(dir / (c.file + ".outputs"));
    shapes << fmt::format("{}\n", fmt::join(x.sizes(), " "));
    std::ofstream(dir / (c.file + ".input.bin"), std::ios::binary)
        .write(static_cast<const char*>(x.data_ptr()), static_cast<std::streamsize>(x.nbytes()));
    for (size_t i = 0; i < names.size(); ++i) {
      const auto t = want[i].contiguous();
      shapes << fmt::format("{}\n", fmt::join(t.sizes(), " "));
      outputs << names[i] << "\n";
      std::ofstream(dir / (c.file + "." + names[i] + ".bin"), std::ios::binary)
          .write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    }
  }
  // TorchScript: a tuple of the five maps.
  const auto ts = (dir / "features.ts.pt").string();
  deploy::export_torchscript(*net, ts, options);
  const auto got = torch::jit::load(ts).forward({x}).toTuple()->elements();
  ASSERT_EQ(got.size(), names.size());
  // 5e-4 of the largest value: the state h is folded through 16 blocks of random weights and the
  // two runtimes round differently (CI measured 1.3e-4 on h).
  for (size_t i = 0; i < names.size(); ++i)
    EXPECT_LE((got[i].toTensor() - want[i]).abs().max().item<double>(),
              5e-4 * want[i].abs().max().item<double>())
        << names[i];
  std::vector<std::string> missing;
  if (python_has("onnx")) {
    const auto check = fmt::format(
        "{} -c \"import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m); "
        "sys.exit(0 if [o.name for o in m.graph.output] == ['C2', 'C3', 'C4', 'C5', 'h'] else 1)\" {}",
        kPython, (dir / (c.file + ".onnx")).string());
    EXPECT_EQ(std::system(check.c_str()), 0);
  } else {
    missing.push_back("the ONNX checker (python3-onnx)");
  }
  check_in_onnxruntime(dir, missing);
  fs::remove_all(dir);
  if (!missing.empty()) GTEST_SKIP() << "not checked in: " << fmt::format("{}", fmt::join(missing, ", "));
}

TEST(OnnxExport, EveryRegistryEntryTranslates) {
  // Translation only (the runtimes check one entry per structural variant above), at a small input.
  torch::NoGradGuard no_grad;
  for (const auto& entry : models::model_registry()) {
    SCOPED_TRACE(entry.name);
    auto net = models::create_model(entry.name, {});
    net->eval();
    deploy::ExportOptions options;
    options.input_shape = entry.default_input();
    options.input_shape[1] = options.input_shape[2] = std::min<int64_t>(options.input_shape[1], 64);
    const auto model = deploy::onnx_from_graph(*deploy::trace_inference_graph(*net, options));
    EXPECT_GT(model.size(), 4u * 150000u);  // the weights are in it (the smallest entry has ~200 k)
  }
}

TEST(OnnxExport, NamesEveryOperationWithoutAnOnnxEquivalent) {
  auto graph = std::make_shared<torch::jit::Graph>();
  torch::jit::parseIR(R"IR(
graph(%x : Float(2, 3, strides=[3, 1], requires_grad=0, device=cpu)):
  %dim : int = prim::Constant[value=1]()
  %none : NoneType = prim::Constant()
  %y : Tensor = aten::softmax(%x, %dim, %none)
  %z : Tensor = aten::erf(%y)
  %r : Tensor = aten::relu(%z)
  return (%r)
)IR",
                      graph.get());
  try {
    deploy::onnx_from_graph(*graph);
    FAIL() << "a graph with softmax and erf was translated";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("aten::softmax"), std::string::npos) << what;
    EXPECT_NE(what.find("aten::erf"), std::string::npos) << what;
    EXPECT_EQ(what.find("relu"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
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
  const auto onnx = (dir / "model.onnx").string();
  r = test::run_rla("--threads 1 export " + run + " -f onnx --keep-bn -o " + onnx);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(fs::file_size(onnx), 100000u);  // rla_resnet20's weights are about 0.3 MB
  const auto fixed = (dir / "model4.onnx").string();
  r = test::run_rla("--threads 1 export " + run + " -f onnx --batch 4 -o " + fixed);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  if (python_has("onnx")) {
    const auto check = fmt::format(
        "{} -c \"import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m); "
        "sys.exit(0 if [m.graph.input[0].type.tensor_type.shape.dim[0].dim_value, "
        "m.graph.output[0].type.tensor_type.shape.dim[0].dim_value] == [4, 4] else 1)\" {}",
        kPython, fixed);
    EXPECT_EQ(std::system(check.c_str()), 0);
  }
  // The backbone of the run: its three stage outputs and h, named by stride.
  const auto features = (dir / "features.onnx").string();
  r = test::run_rla("--threads 1 export " + run + " -f onnx --features --with-state -o " + features);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("rla_resnet20 backbone as ONNX"), std::string::npos) << r.output;
  if (python_has("onnx")) {
    const auto names = fmt::format(
        "{} -c \"import onnx, sys; m = onnx.load(sys.argv[1]); "
        "sys.exit(0 if [o.name for o in m.graph.output] == ['C0', 'C1', 'C2', 'h'] else 1)\" {}",
        kPython, features);
    EXPECT_EQ(std::system(names.c_str()), 0);
  }
  // The run kept no weight average: asking for it is a one-line error.
  const auto no_ema =
      test::run_rla("--threads 1 export " + run + " --weights ema -o " + (dir / "x.pt").string());
  EXPECT_NE(no_ema.exit_code, 0);
  EXPECT_NE(no_ema.output.find("no weight average"), std::string::npos) << no_ema.output;
  EXPECT_FALSE(fs::exists(dir / "x.pt"));
  for (const std::string& bad :
       {"export " + run + " -f tflite -o " + (dir / "x.onnx").string(),
        "export " + (dir / "nosuch").string() + " -o " + (dir / "x.pt").string(),
        "export " + run + "/best_model.pt -o " + (dir / "x.pt").string(),     // a state dict without --model
        "export " + run + " --model resnet20 -o " + (dir / "x.pt").string(),  // another model
        "export " + run + " --input 1,28 -o " + (dir / "x.pt").string(),
        "export " + run + " --batch 4 -o " + (dir / "x.pt").string(),        // --batch is for ONNX
        "export " + run + " --with-state -o " + (dir / "x.pt").string()}) {  // --with-state needs --features
    const auto b = test::run_rla("--threads 1 " + bad);
    EXPECT_NE(b.exit_code, 0) << bad;
    EXPECT_EQ(std::count(b.output.begin(), b.output.end(), '\n'), 1) << bad << "\n" << b.output;
    EXPECT_FALSE(fs::exists(dir / "x.pt")) << bad;
    EXPECT_FALSE(fs::exists(dir / "x.onnx")) << bad;
  }
  fs::remove_all(dir);
}

}  // namespace
