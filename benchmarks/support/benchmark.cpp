#include "support/benchmark.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <torch/cuda.h>
#include <nlohmann/json.hpp>

#include "rla/inference/fast_inference.h"
#include "rla/models/registry.h"
#include "rla/models/summary.h"
#include "rla/util/threads.h"

namespace rla::bench {
namespace {

using Clock = std::chrono::steady_clock;

/// Peak RSS since the last reset (Linux: VmHWM, reset by writing 5 to clear_refs).
void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (f) f << "5";
}

int64_t peak_rss_mb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) / 1024;
  }
  return 0;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

constexpr const char* kJemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";

/// The eager-PyTorch child process (benchmarks/python/bench_worker.py), one JSON line each way.
class PythonWorker {
 public:
  /// `env`: variables set in the child only (e.g. the tuned worker's heap).
  PythonWorker(const std::string& python, const std::string& script,
               const std::vector<std::pair<std::string, std::string>>& env = {}) {
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) throw std::runtime_error("bench: pipe() failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("bench: fork() failed");
    if (pid_ == 0) {
      dup2(to_child[0], 0);
      dup2(from_child[1], 1);
      close(to_child[1]);
      close(from_child[0]);
      for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
      execl(python.c_str(), python.c_str(), script.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    in_ = fdopen(to_child[1], "w");
    out_ = fdopen(from_child[0], "r");
  }
  ~PythonWorker() {
    if (in_) {
      std::fputs("{\"op\": \"quit\"}\n", in_);
      std::fclose(in_);
    }
    if (out_) std::fclose(out_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }
  PythonWorker(const PythonWorker&) = delete;
  PythonWorker& operator=(const PythonWorker&) = delete;

  nlohmann::json call(const nlohmann::json& request) {
    const std::string line = request.dump() + "\n";
    std::fputs(line.c_str(), in_);
    std::fflush(in_);
    std::string reply;
    int c;
    while ((c = std::fgetc(out_)) != EOF && c != '\n') reply.push_back(static_cast<char>(c));
    if (reply.empty())
      throw std::runtime_error("bench: the Python worker exited (request " + request.dump() + ")");
    auto j = nlohmann::json::parse(reply);
    if (j.contains("error"))
      throw std::runtime_error("bench: Python worker: " + j["error"].get<std::string>());
    return j;
  }

 private:
  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
};

torch::Device select_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda") {
    if (!torch::cuda::is_available()) {
      throw std::runtime_error(
          "--device cuda: CUDA is not available (this LibTorch build or machine has no GPU)");
    }
    return torch::kCUDA;
  }
  throw std::invalid_argument("--device must be cpu or cuda, got '" + name + "'");
}

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

/// A repeated workload: `step` runs one iteration. Calibrated once so each sample lasts at
/// least min_s; each sample returns the time per iteration in seconds.
struct Timed {
  std::function<void()> step;
  torch::Device device = torch::kCPU;
  int iters = 1;
  int64_t hwm_mb = 0;

  void calibrate(double min_s) {
    step();  // warm-up: oneDNN primitives, allocator
    sync(device);
    if (min_s <= 0) return;
    const auto t0 = Clock::now();
    step();
    sync(device);
    const double t = std::chrono::duration<double>(Clock::now() - t0).count();
    iters = std::clamp(static_cast<int>(std::ceil(min_s / std::max(t, 1e-6))), 1, 500);
  }
  double sample() {
    reset_peak_rss();
    const auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) step();
    sync(device);
    const double t = std::chrono::duration<double>(Clock::now() - t0).count() / iters;
    hwm_mb = std::max(hwm_mb, peak_rss_mb());
    return t;
  }
};

bool imagenet(const std::string& model) {
  return models::find_model(model).family == "imagenet";
}

/// Channels-last trains faster here for every family once the RLA state follows the input's
/// format (docs/performance.md); "auto" follows the trainer's default.
bool train_channels_last(const std::string& format) {
  return format != "nchw";
}

// The tuned PyTorch worker's heap: jemalloc preloaded, glibc's malloc tuned as rla tunes its own
// (util/memory.h: no mmap for large blocks, no trimming), or the default.
std::vector<std::pair<std::string, std::string>> tuned_heap_env(const std::string& heap) {
  if (heap == "jemalloc") return {{"LD_PRELOAD", kJemalloc}};
  if (heap == "glibc") return {{"MALLOC_MMAP_MAX_", "0"}, {"MALLOC_TRIM_THRESHOLD_", "2147483647"}};
  if (heap == "default") return {};
  throw std::invalid_argument("--tuned-heap: unknown '" + heap + "' (jemalloc, glibc or default)");
}

struct Workload {
  std::string name;
  bool train;
  int64_t batch, size;
};

int cores() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

BenchRow run_workload(const BenchConfig& cfg, const std::string& model, const Workload& w, PythonWorker* py,
                      PythonWorker* tuned, std::ostream& log) {
  const torch::Device dev = select_device(cfg.device);
  const int rounds = cfg.quick ? std::min(cfg.rounds, 3) : cfg.rounds;
  const int threads = util::threads_for_batch(w.batch);  // 1 thread measured faster at batch 1 here
  util::set_intra_op_threads(threads);
  torch::manual_seed(0);
  BenchRow row;
  row.model = model, row.workload = w.name, row.batch = w.batch, row.size = w.size;

  {
    auto probe = models::create_model(model);
    row.gflop_per_img = (w.train ? 6.0 : 2.0) * models::summarize(*probe, {3, w.size, w.size}).macs / 1e9;
  }
  models::ModelConfig mc;
  mc.channels_last = w.train && train_channels_last(cfg.train_format);
  row.cpp_format = mc.channels_last ? "channels-last" : "NCHW";
  auto net = models::create_model(model, mc);
  net->to(dev);
  const auto fmt_ = mc.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  auto x = torch::randn({w.batch, 3, w.size, w.size}, torch::TensorOptions().device(dev)).contiguous(fmt_);

  Timed eager, fast;
  eager.device = fast.device = dev;
  std::unique_ptr<torch::optim::SGD> opt;
  std::unique_ptr<inference::FastNetwork> fast_net;
  torch::Tensor labels;
  if (w.train) {
    net->train();
    opt = std::make_unique<torch::optim::SGD>(
        models::unique_parameters(*net), torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4));
    labels = torch::randint(10, {w.batch}, torch::TensorOptions().dtype(torch::kLong).device(dev));
    eager.step = [&] {
      opt->zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward(x), labels);
      loss.backward();
      opt->step();
      loss.item<float>();
    };
  } else {
    net->eval();
    fast_net = std::make_unique<inference::FastNetwork>(
        net, inference::FastOptions().split_concat(cfg.split_concat).backend(cfg.fast_backend));
    row.fast_backend = fast_net->backend();
    eager.step = [&] {
      c10::InferenceMode guard;
      net->forward(x).sum().item<float>();
    };
    fast.step = [&] { fast_net->forward(x).sum().item<float>(); };
  }
  // A training step lasts seconds here: one warm-up step, then one step per sample.
  eager.calibrate(w.train ? 0.0 : cfg.min_sample_s);
  if (fast.step) fast.calibrate(cfg.min_sample_s);
  // Each Python worker: prepared once, then `iters` steps per timed sample.
  auto prepare = [&](PythonWorker* worker, bool is_tuned) {
    if (!worker) return 0;
    auto r = worker->call({{"op", "prepare"},
                           {"model", model},
                           {"mode", w.train ? "train" : "infer"},
                           {"batch", w.batch},
                           {"size", w.size},
                           {"threads", threads},
                           {"device", cfg.device},
                           {"tuned", is_tuned},
                           {"warmup", w.train ? 1 : 3}});
    const double t = w.train ? 1e9 : r["warmup_s"].get<double>() / 3;
    return std::clamp(static_cast<int>(std::ceil(cfg.min_sample_s / std::max(t, 1e-6))), 1, 500);
  };
  const int py_iters = prepare(py, false), tuned_iters = prepare(tuned, true);
  auto sample = [](PythonWorker* worker, int iters, std::vector<double>& times, int64_t& hwm) {
    auto j = worker->call({{"op", "run"}, {"iters", iters}});
    times.push_back(j["seconds"].get<double>() / iters);
    hwm = std::max<int64_t>(hwm, j["hwm_kb"].get<int64_t>() / 1024);
  };

  std::vector<double> te, tf, tp, tt;
  int64_t py_hwm = 0, tuned_hwm = 0;
  for (int r = 0; r < rounds; ++r) {  // alternate: C++ eager, C++ fast, PyTorch default, PyTorch tuned
    te.push_back(eager.sample());
    if (fast.step) tf.push_back(fast.sample());
    if (py) sample(py, py_iters, tp, py_hwm);
    if (tuned) sample(tuned, tuned_iters, tt, tuned_hwm);
  }
  auto rate = [&](double t) { return t > 0 ? static_cast<double>(w.batch) / t : 0.0; };
  row.cpp_ms = 1e3 * median(te);
  row.fast_ms = 1e3 * median(tf);
  row.py_ms = 1e3 * median(tp);
  row.cpp_img_s = rate(median(te));
  row.fast_img_s = rate(median(tf));
  row.py_img_s = rate(median(tp));
  row.tuned_ms = 1e3 * median(tt);
  row.tuned_img_s = rate(median(tt));
  row.tuned_hwm_mb = tuned_hwm;
  row.cpp_hwm_mb = std::max(eager.hwm_mb, fast.hwm_mb);
  row.py_hwm_mb = py_hwm;
  log << fmt::format(
      "  {:<22} {:<9} batch {:>3} @{:>3}  C++ {:9.1f} img/s  fast {:9.1f}  PyTorch {:9.1f}  tuned {:9.1f}  "
      "({} threads, {} rounds)\n",
      model, w.name, w.batch, w.size, row.cpp_img_s, row.fast_img_s, row.py_img_s, row.tuned_img_s, threads,
      rounds);
  log.flush();
  return row;
}

double best_gflops(const std::function<void()>& op, double flop, const torch::Device& dev) {
  op();
  sync(dev);
  double best = 0;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = Clock::now();
    op();
    sync(dev);
    best = std::max(best, flop / 1e9 / std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

nlohmann::json row_json(const BenchRow& r, const std::string& tuned_heap) {
  return {{"model", r.model},
          {"workload", r.workload},
          {"batch", r.batch},
          {"size", r.size},
          {"cpp_img_s", r.cpp_img_s},
          {"fast_img_s", r.fast_img_s},
          {"py_img_s", r.py_img_s},
          {"py_tuned_img_s", r.tuned_img_s},
          {"py_tuned_ms", r.tuned_ms},
          {"py_tuned_peak_mb", r.tuned_hwm_mb},
          {"py_tuned_heap", tuned_heap},
          {"cpp_ms", r.cpp_ms},
          {"fast_ms", r.fast_ms},
          {"py_ms", r.py_ms},
          {"cpp_peak_mb", r.cpp_hwm_mb},
          {"py_peak_mb", r.py_hwm_mb},
          {"gflop_per_img", r.gflop_per_img},
          {"cpp_format", r.cpp_format},
          {"fast_backend", r.fast_backend}};
}

}  // namespace

BenchCeiling measure_ceiling(const std::string& device) {
  const torch::Device dev = select_device(device);
  torch::NoGradGuard no_grad;
  BenchCeiling c;
  const int64_t n = 2048;
  auto a = torch::randn({n, n}, torch::TensorOptions().device(dev));
  auto b = torch::randn({n, n}, torch::TensorOptions().device(dev));
  // sgemm at its best: OpenBLAS with one thread per core, then back to one (util/threads.h).
  util::set_blas_threads(torch::get_num_threads());
  c.sgemm_gflops = best_gflops([&] { torch::mm(a, b).sum().item<float>(); }, 2.0 * n * n * n, dev);
  util::set_blas_threads(1);
  c.sgemm_gflops = std::max(c.sgemm_gflops,
                            best_gflops([&] { torch::mm(a, b).sum().item<float>(); }, 2.0 * n * n * n, dev));
  auto x = torch::randn({32, 128, 28, 28}, torch::TensorOptions().device(dev));
  auto w = torch::randn({128, 128, 3, 3}, torch::TensorOptions().device(dev));
  const double flop = 2.0 * 32 * 128 * 128 * 9 * 28 * 28;
  for (const auto f : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
    auto xf = x.contiguous(f);
    auto wf = w.contiguous(f);
    c.conv_gflops = std::max(
        c.conv_gflops, best_gflops([&] { at::conv2d(xf, wf, {}, 1, 1).sum().item<float>(); }, flop, dev));
  }
  return c;
}

BenchReport run_benchmark(const BenchConfig& cfg, std::ostream& log) {
  BenchReport report;
  report.config = cfg;
  report.threads = cores();
  select_device(cfg.device);  // fail before any work
  std::unique_ptr<PythonWorker> py, tuned;
  if (!cfg.python_dir.empty()) {
    py = std::make_unique<PythonWorker>(cfg.python, cfg.python_dir + "/bench_worker.py");
    if (cfg.tuned_python)
      tuned = std::make_unique<PythonWorker>(cfg.python, cfg.python_dir + "/bench_worker.py",
                                             tuned_heap_env(cfg.tuned_heap));
  }
  std::ofstream jsonl;
  if (!cfg.jsonl.empty()) jsonl.open(cfg.jsonl);

  util::set_intra_op_threads(cores());
  report.ceiling = measure_ceiling(cfg.device);
  log << fmt::format("ceiling ({} threads): sgemm {:.1f} GFLOP/s, 3x3 conv {:.1f} GFLOP/s\n", cores(),
                     report.ceiling.sgemm_gflops, report.ceiling.conv_gflops);
  for (const auto& model : cfg.models) {
    const bool big = imagenet(model);
    const int64_t size = big ? 224 : 32;
    const std::vector<Workload> loads = {{"train", true, big ? (cfg.quick ? 4 : 32) : 128, size},
                                         {"infer b1", false, 1, size},
                                         {"infer b32", false, 32, size}};
    for (const auto& w : loads) {
      if ((w.train && cfg.only_inference) || (!w.train && cfg.only_training)) continue;
      report.rows.push_back(run_workload(cfg, model, w, py.get(), tuned.get(), log));
      if (jsonl) jsonl << row_json(report.rows.back(), cfg.tuned_heap).dump() << "\n" << std::flush;
    }
  }
  util::set_intra_op_threads(cores());
  return report;
}

std::string format_report(const BenchReport& r) {
  const auto& c = r.config;
  std::string out = fmt::format(
      "device {}, {} cores; {} mode ({} rounds per workload{}); medians; C++ and PyTorch alternated.\n"
      "ceiling: sgemm {:.1f} GFLOP/s, 3x3 conv {:.1f} GFLOP/s. Threads: 1 at batch 1, {} otherwise, OpenBLAS "
      "1 "
      "(both sides).\n"
      "GFLOP/s = GFLOP per image x img/s with 2 x MACs for inference and 6 x MACs for training "
      "(forward + backward); share = of the conv ceiling, best C++ path.\n"
      "PyTorch tuned: channels-last, inference_mode, frozen optimize_for_inference TorchScript for "
      "inference, "
      "heap '{}'.\n\n",
      c.device, r.threads, c.quick ? "QUICK" : "full", c.quick ? std::min(c.rounds, 3) : c.rounds,
      c.quick ? ", ImageNet training at batch 4 instead of 32" : "", r.ceiling.sgemm_gflops,
      r.ceiling.conv_gflops, r.threads, c.tuned_heap);
  out +=
      "| model | workload | batch@size | C++ eager img/s | C++ fast img/s | PyTorch img/s | PyTorch tuned "
      "img/s "
      "| best C++/Py | best C++/tuned | C++ best ms | tuned ms | GFLOP/s | % conv ceiling | peak RSS MB C++ "
      "/ Py "
      "/ tuned |\n";
  out += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  auto ratio = [](double a, double b) {
    return (a > 0 && b > 0) ? fmt::format("{:.2f}x", a / b) : std::string("-");
  };
  auto num = [](double v) { return v > 0 ? fmt::format("{:.1f}", v) : std::string("-"); };
  for (const auto& row : r.rows) {
    const double best = std::max(row.cpp_img_s, row.fast_img_s);
    const double best_ms = row.fast_ms > 0 ? std::min(row.cpp_ms, row.fast_ms) : row.cpp_ms;
    const double gflops = best * row.gflop_per_img;
    auto mb = [](int64_t v) { return v > 0 ? std::to_string(v) : std::string("-"); };
    out += fmt::format(
        "| {} | {}{} | {}@{} | {} | {} | {} | {} | {} | {} | {:.1f} | {} | {:.1f} | {:.0f}% | {} / {} / {} "
        "|\n",
        row.model, row.workload,
        row.workload == "train" ? " (" + row.cpp_format + ")" : " (fast: " + row.fast_backend + ")",
        row.batch, row.size, num(row.cpp_img_s), num(row.fast_img_s), num(row.py_img_s), num(row.tuned_img_s),
        ratio(best, row.py_img_s), ratio(best, row.tuned_img_s), best_ms, num(row.tuned_ms), gflops,
        100.0 * gflops / std::max(r.ceiling.conv_gflops, 1e-9), row.cpp_hwm_mb, mb(row.py_hwm_mb),
        mb(row.tuned_hwm_mb));
  }
  return out;
}

}  // namespace rla::bench
