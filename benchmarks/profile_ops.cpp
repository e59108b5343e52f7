// Where the time of a training step or a forward goes, op by op (LibTorch's profiler): self time
// per ATen operator, summed over timed steps, for one model; run it for an RLA model and its plain
// counterpart to see what RLA adds (docs/performance.md, "Where RLA's time goes").
//   ./build/benchmarks/profile_ops --model rla_resnet20 --mode train --batch 128 --size 32
//   ./build/benchmarks/profile_ops --model rla_resnet50 --mode infer --batch 1 --size 224 --fast
#include <torch/csrc/autograd/profiler_legacy.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <map>

#include <fmt/format.h>

#include "rla/inference/fast_inference.h"
#include "rla/inference/quantized.h"
#include "rla/models/registry.h"
#include "rla/util/memory.h"
#include "rla/util/threads.h"

namespace {

namespace prof = torch::autograd::profiler;

struct OpTime {
  double self_us = 0;
  int64_t calls = 0;
};

// Self time per op name from the profiler's push/pop events (each thread's list nests).
std::map<std::string, OpTime> self_times(const prof::thread_event_lists& lists) {
  std::map<std::string, OpTime> out;
  for (const auto& events : lists) {
    struct Open {
      const prof::LegacyEvent* push;
      double children_us;
    };
    std::vector<Open> stack;
    for (const auto& e : events) {
      if (e.kind() == prof::EventKind::PushRange) {
        stack.push_back({&e, 0.0});
      } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
        const auto open = stack.back();
        stack.pop_back();
        const double total = open.push->cpuElapsedUs(e);
        auto& t = out[open.push->name()];
        t.self_us += total - open.children_us;
        ++t.calls;
        if (!stack.empty()) stack.back().children_us += total;
      }
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  rla::util::prefer_passive_omp_wait(argv);
  rla::util::keep_freed_memory();
  std::string model = "rla_resnet20", mode = "train";
  int64_t batch = 128, size = 32, steps = 5, top = 25;
  int threads = 0;
  bool fast = false, nchw = false, int8 = false, no_profile = false;
  CLI::App app{"Self time per ATen op of a training step or a forward"};
  app.add_option("--model", model)->capture_default_str();
  app.add_option("--mode", mode)->check(CLI::IsMember({"train", "infer"}))->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--size", size, "Input height and width")->capture_default_str();
  app.add_option("--steps", steps, "Timed steps (after 2 untimed)")->capture_default_str();
  app.add_option("--threads", threads, "Intra-op threads (0: 1 at batch 1, else all cores)");
  app.add_option("--top", top, "Rows to print")->capture_default_str();
  app.add_flag("--fast", fast, "Inference through the prepared copy (FastNetwork)");
  app.add_flag("--nchw", nchw, "NCHW instead of channels-last");
  app.add_flag("--int8", int8,
               "Inference through the int8 graph (QuantizedNetwork, calibrated on the input)");
  app.add_flag("--no-profile", no_profile,
               "Time the steps only (no profiled pass): with ONEDNN_VERBOSE=1 the log's last forward is an "
               "unprofiled one, for benchmarks/onednn_layers.py");
  CLI11_PARSE(app, argc, argv);
  rla::util::set_intra_op_threads(threads > 0 ? threads : rla::util::threads_for_batch(batch));

  rla::models::ModelConfig mc;
  mc.channels_last = !nchw;
  torch::manual_seed(0);
  auto net = rla::models::create_model(model, mc);
  const auto fmt_ = nchw ? at::MemoryFormat::Contiguous : at::MemoryFormat::ChannelsLast;
  const auto x = torch::randn({batch, 3, size, size}).contiguous(fmt_);
  const auto labels = torch::randint(10, {batch}, torch::kLong);
  torch::optim::SGD opt(rla::models::unique_parameters(*net), torch::optim::SGDOptions(0.01).momentum(0.9));
  std::unique_ptr<rla::inference::FastNetwork> fast_net;
  if (mode == "infer") {
    net->eval();
    if (fast) fast_net = std::make_unique<rla::inference::FastNetwork>(net);
  }
  std::unique_ptr<rla::inference::QuantizedNetwork> int8_net;
  if (mode == "infer" && int8) {
    int8_net = std::make_unique<rla::inference::QuantizedNetwork>(*net, std::vector<int64_t>{3, size, size});
    int8_net->calibrate(x);
    int8_net->finalize();
  }
  auto step = [&] {
    if (mode == "train") {
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward(x), labels);
      loss.backward();
      opt.step();
      loss.item<float>();
    } else if (int8_net) {
      int8_net->forward(x).sum().item<float>();
    } else if (fast_net) {
      fast_net->forward(x).sum().item<float>();
    } else {
      c10::InferenceMode guard;
      net->forward(x).sum().item<float>();
    }
  };
  for (int i = 0; i < 2; ++i) step();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) step();
  const double plain_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
      static_cast<double>(steps);

  if (no_profile) {
    fmt::print("{} {} batch {} @{}: {:.2f} ms per step unprofiled\n", model, mode, batch, size, plain_ms);
    return 0;
  }
  prof::enableProfilerLegacy(
      torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
  for (int64_t i = 0; i < steps; ++i) step();
  const auto times = self_times(prof::disableProfilerLegacy());

  std::vector<std::pair<std::string, OpTime>> rows(times.begin(), times.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.self_us > b.second.self_us; });
  double total = 0;
  for (const auto& r : rows) total += r.second.self_us;
  const double n = static_cast<double>(steps);
  fmt::print("{} {} batch {} @{} ({}, {} threads{}): {:.2f} ms per step unprofiled, {:.2f} ms profiled\n",
             model, mode, batch, size, nchw ? "NCHW" : "channels-last", torch::get_num_threads(),
             int8   ? ", int8"
             : fast ? ", fast path"
                    : "",
             plain_ms, total / 1e3 / n);
  fmt::print("| op | self ms per step | share | calls per step |\n|---|---|---|---|\n");
  for (int64_t i = 0; i < std::min<int64_t>(top, static_cast<int64_t>(rows.size())); ++i) {
    const auto& [name, t] = rows[static_cast<size_t>(i)];
    fmt::print("| {} | {:.3f} | {:.1f}% | {:.0f} |\n", name, t.self_us / 1e3 / n, 100.0 * t.self_us / total,
               static_cast<double>(t.calls) / n);
  }
  return 0;
}
