// Deployment speed (docs/deploy.md): the fp32 fast path against the int8 model
// (inference/quantized.h) at batch 1 and 32, alternated in one run, plus the ONNX files the ONNX
// Runtime side of benchmarks/bench_deploy.sh times.
//   ./build/benchmarks/bench_deploy [--models rla_resnet20,resnet20,rla_resnet50] [--threads 2]
//                                   [--rounds 5] [--onnx-dir DIR] [--jsonl FILE]
// Weights are random (speed does not depend on them); int8 scales come from 64 random images.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "rla/deploy/export.h"
#include "rla/inference/fast_inference.h"
#include "rla/inference/quantized.h"
#include "rla/models/registry.h"
#include "rla/util/memory.h"
#include "rla/util/threads.h"

namespace {

using namespace rla;

/// Milliseconds per call of f over one sample of at least 0.3 s.
template <typename F>
double sample_ms(F&& f) {
  int calls = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    f();
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < 0.3);
  return 1e3 * elapsed / calls;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<int64_t> input_of(const std::string& model) {
  return model.find("resnet20") != std::string::npos ? std::vector<int64_t>{1, 28, 28}
                                                     : std::vector<int64_t>{3, 224, 224};
}

}  // namespace

int main(int argc, char** argv) {
  rla::util::keep_freed_memory();  // as the rla tool runs (util/memory.h)
  std::vector<std::string> models = {"rla_resnet20", "resnet20", "rla_resnet50"};
  int threads = 2, rounds = 5;
  std::string onnx_dir, jsonl;
  CLI::App app{"Deployment speed: fp32 fast path vs int8, batch 1 and 32"};
  app.add_option("--models", models, "Registered model names")->delimiter(',');
  app.add_option("--threads", threads, "Intra-op threads")->check(CLI::PositiveNumber);
  app.add_option("--rounds", rounds, "Timed samples per case (median)")->check(CLI::PositiveNumber);
  app.add_option("--onnx-dir", onnx_dir, "Also write <model>.onnx here (BatchNorm folded)");
  app.add_option("--jsonl", jsonl, "Also append one JSON object per model and batch to this file");
  CLI11_PARSE(app, argc, argv);
  try {
    util::set_intra_op_threads(threads);
    torch::NoGradGuard no_grad;
    fmt::print("threads {}, median of {} samples; int8 engine: ", threads, rounds);
    std::cout << std::flush;
    for (const auto& name : models) {
      const auto shape = input_of(name);
      models::ModelConfig config;
      config.in_channels = shape[0];
      torch::manual_seed(0);
      auto net = models::create_model(name, config);
      net->eval();
      inference::QuantizedNetwork q(*net, shape);
      for (int i = 0; i < 4; ++i) q.calibrate(torch::randn({16, shape[0], shape[1], shape[2]}));
      q.finalize();
      if (name == models.front()) fmt::print("{}\n", inference::QuantizedNetwork::engine());
      inference::FastNetwork fast(net);
      if (!onnx_dir.empty()) {
        std::filesystem::create_directories(onnx_dir);
        deploy::ExportOptions eo;
        eo.input_shape = shape;
        deploy::export_onnx(*net, (std::filesystem::path(onnx_dir) / (name + ".onnx")).string(), eo);
      }
      for (int64_t batch : {1, 32}) {
        const auto x = torch::randn({batch, shape[0], shape[1], shape[2]});
        fast.forward(x);  // warm-up: weights packed, buffers allocated
        q.forward(x);
        // Alternate the two so that drift in the machine's speed hits both alike.
        std::vector<double> f_samples, q_samples;
        for (int r = 0; r < rounds; ++r) {
          f_samples.push_back(sample_ms([&] { fast.forward(x); }));
          q_samples.push_back(sample_ms([&] { q.forward(x); }));
        }
        const double fp32 = median(f_samples), int8 = median(q_samples);
        if (!jsonl.empty())
          std::ofstream(jsonl, std::ios::app) << fmt::format(
              R"({{"model": "{}", "batch": {}, "fp32_ms": {:.4f}, "int8_ms": {:.4f}, "backend": "{}"}})"
              "\n",
              name, batch, fp32, int8, fast.backend());
        fmt::print(
            "{:<14} [{},{},{}] batch {:>2}: fp32 fast path {:8.2f} ms  int8 {:8.2f} ms  int8 speed-up "
            "{:.2f}x\n",
            name, shape[0], shape[1], shape[2], batch, fp32, int8, fp32 / int8);
        if (batch == 32) {  // how far int8 strays on this (random) batch
          const auto want = net->forward(x), got = q.forward(x);
          const double rel = ((got - want).abs().max() / want.abs().max()).item<double>();
          const double agree = got.argmax(1).eq(want.argmax(1)).to(torch::kDouble).mean().item<double>();
          fmt::print(
              "{:<14} int8 vs fp32 logits: max difference {:.3f} of the largest, same top-1 class {:.0f}%\n",
              name, rel, 100 * agree);
        }
        std::cout << std::flush;
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_deploy: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
