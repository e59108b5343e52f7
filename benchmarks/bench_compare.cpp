// Side-by-side speed benchmark (docs/performance.md): eager LibTorch, the fast inference path, eager
// PyTorch as a plain script runs it and PyTorch tuned, alternated in one run, with the machine's
// sgemm / 3x3-conv ceiling.
//   ./build/benchmarks/bench_compare [--quick] [--models a,b] [--device cuda] [--jsonl out.jsonl]
// scripts/bench_compare.sh wraps it (load average before / after, log file).
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "rla/util/memory.h"
#include "rla/util/threads.h"
#include "support/benchmark.h"

int main(int argc, char** argv) {
  rla::util::prefer_passive_omp_wait(argv);  // the Python worker inherits the policy
  // The C++ side keeps its heap (util/memory.h); the Python worker keeps glibc's defaults, as
  // a PyTorch user would have them.
  const bool kept_heap = rla::util::keep_freed_memory();
  rla::bench::BenchConfig cfg;
  // The Python side lives next to this file in the source tree.
  cfg.python_dir = (std::filesystem::path(__FILE__).parent_path() / "python").string();
  bool no_python = false;
  CLI::App app{"Side-by-side speed benchmark: C++ eager, C++ fast path, eager PyTorch"};
  app.add_option("--models", cfg.models, "Registered model names")->delimiter(',');
  app.add_flag("--quick", cfg.quick, "3 rounds, ImageNet training at batch 4 (said in the output)");
  app.add_option("--rounds", cfg.rounds, "Alternations per workload")->check(CLI::PositiveNumber);
  app.add_option("--min-sample-s", cfg.min_sample_s, "Minimum seconds per timed sample");
  app.add_option("--device", cfg.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--python", cfg.python, "Python with torch 1.13");
  app.add_option("--python-dir", cfg.python_dir, "Folder holding bench_worker.py");
  app.add_flag("--no-python", no_python, "C++ only");
  app.add_flag("!--no-tuned", cfg.tuned_python, "No 'PyTorch tuned' column");
  app.add_option("--tuned-heap", cfg.tuned_heap, "Heap of the tuned PyTorch worker")
      ->check(CLI::IsMember({"jemalloc", "glibc", "default"}))
      ->capture_default_str();
  app.add_option("--train-format", cfg.train_format, "auto, nchw or channels_last")
      ->check(CLI::IsMember({"auto", "nchw", "channels_last"}));
  app.add_flag(
      "--split-concat", cfg.split_concat,
      "Fast path: conv1 as two convs instead of conv(cat(x, h)) (already the default with fused post-ops)");
  app.add_option("--fast-backend", cfg.fast_backend, "Fast path tensors (ResNets): auto, mkldnn or dense")
      ->check(CLI::IsMember({"auto", "mkldnn", "dense"}));
  auto* only_inf = app.add_flag("--only-inference", cfg.only_inference, "Skip the training workloads");
  app.add_flag("--only-training", cfg.only_training, "Skip the inference workloads")->excludes(only_inf);
  app.add_option("--jsonl", cfg.jsonl, "Also write one JSON object per row here");
  CLI11_PARSE(app, argc, argv);
  if (no_python) cfg.python_dir.clear();
  try {
    const auto report = rla::bench::run_benchmark(cfg, std::cerr);
    std::cout << "OMP_WAIT_POLICY=" << std::getenv("OMP_WAIT_POLICY")
              << " (C++ and Python), OpenBLAS 1 thread; C++ heap kept (no mmap/trim): "
              << (kept_heap ? "yes" : "no (RLA_SYSTEM_MALLOC set)") << "\n"
              << rla::bench::format_report(report);
  } catch (const std::exception& e) {
    std::cerr << "bench_compare: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
