#pragma once
// Side-by-side speed benchmark (docs/performance.md): per model, training img/s, inference latency at
// batch 1 and throughput at batch 32 — eager LibTorch, the fast inference path
// (inference/fast_inference.h), eager PyTorch as a plain script runs it and PyTorch tuned
// (benchmarks/python/bench_worker.py, two child processes) measured ALTERNATELY in one run
// (C++, fast, PyTorch, tuned, C++, ...; medians) — plus peak
// memory and the machine's measured ceiling (sgemm and 3x3-conv GFLOP/s).
#include <iosfwd>
#include <string>
#include <vector>

namespace rla::bench {

struct BenchConfig {
  std::vector<std::string> models = {"resnet20", "rla_resnet20", "rla_resnet56",
                                     "resnet50", "rla_resnet50", "dsrla_mobilenetv2_k32"};
  /// Fewer rounds and a smaller ImageNet training batch (4 instead of 32); said in the output.
  bool quick = false;
  int rounds = 5;              ///< alternations per workload (quick: 3)
  double min_sample_s = 0.5;   ///< each timed sample repeats the workload for at least this long
  std::string device = "cpu";  ///< "cpu" or "cuda" (fails if CUDA is not available)
  std::string python = "/usr/bin/python3";
  std::string python_dir;  ///< folder of bench_worker.py; empty: no Python side
  /// A second PyTorch column, as a speed-minded user runs it (bench_worker.py "tuned"), with
  /// this heap: "jemalloc" (preloaded), "glibc" (malloc tunables) or "default".
  bool tuned_python = true;
  std::string tuned_heap = "jemalloc";
  /// Memory format of the eager C++ training run: "auto" (= channels-last, the trainer default),
  /// "nchw" or "channels_last".
  std::string train_format = "auto";
  bool split_concat = false;          ///< fast path: conv1_x(x) + conv1_h(h) instead of conv1(cat(x, h))
  std::string fast_backend = "auto";  ///< fast path: FastOptions::backend (auto, mkldnn, dense)
  bool only_inference = false;        ///< skip the training workload
  bool only_training = false;         ///< skip the inference workloads
  std::string jsonl;                  ///< also write one JSON object per row here (empty: no file)
};

/// One workload of one model. Times are medians over rounds; img/s = batch / median time.
struct BenchRow {
  std::string model, workload;  ///< workload: "train", "infer b1", "infer b32"
  int64_t batch = 0, size = 0;
  double cpp_img_s = 0, fast_img_s = 0, py_img_s = 0, tuned_img_s = 0;  ///< 0 = not measured
  double cpp_ms = 0, fast_ms = 0, py_ms = 0, tuned_ms = 0;              ///< median time per iteration
  int64_t cpp_hwm_mb = 0, py_hwm_mb = 0, tuned_hwm_mb = 0;              ///< peak RSS during the workload
  double gflop_per_img = 0;  ///< 2 * MACs (inference) or 6 * MACs (training: fwd + 2x bwd)
  std::string cpp_format;    ///< memory format of the eager C++ run
  std::string fast_backend;  ///< FastNetwork::backend() of the fast path (inference rows)
};

struct BenchCeiling {
  double sgemm_gflops = 0;  ///< torch::mm, 2048^2, all cores
  double conv_gflops = 0;   ///< 3x3 conv, 32x128x28x28 -> 128, best of NCHW / channels-last
};

struct BenchReport {
  BenchConfig config;
  BenchCeiling ceiling;
  std::vector<BenchRow> rows;
  int threads = 0;
};

/// Measures the machine's ceiling with the current thread count.
BenchCeiling measure_ceiling(const std::string& device);
/// Runs every workload of every model in config.models; progress goes to `log`.
BenchReport run_benchmark(const BenchConfig& config, std::ostream& log);
/// The table printed at the end (markdown): ratios C++/Python and GFLOP/s shares of the ceiling.
std::string format_report(const BenchReport& report);

}  // namespace rla::bench
