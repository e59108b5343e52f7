// What it costs to hand a tiny task to a second thread and wait for it, the step a batch-1
// convolution cut into row bands pays once per layer (models/prepared_conv.cpp;
// docs/performance.md, round ten):
//   omp region       an OpenMP parallel region of two threads, as the bands run now
//   spin hand-off    a second std::thread that waits by spinning on an atomic (ONNX Runtime's
//                    thread pool spins the same way)
//   ... after omp    the same hand-off while libgomp's worker, woken by one parallel region per
//                    100 hand-offs, spins on its own (GOMP_SPINCOUNT) and competes for a core
//     ./build/benchmarks/bench_handoff [REPEATS]
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

double omp_region_us(int n) {
  std::atomic<int> sink{0};
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
#pragma omp parallel for num_threads(2) schedule(static, 1)
    for (int t = 0; t < 2; ++t) sink.fetch_add(t, std::memory_order_relaxed);
  }
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
}

// One helper thread answers every posted number; `omp_every` > 0 also opens an OpenMP region
// every that many hand-offs.
double spin_handoff_us(int n, int omp_every) {
  std::atomic<int> posted{0}, answered{0};
  std::atomic<bool> stop{false};
  std::thread helper([&] {
    int seen = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const int p = posted.load(std::memory_order_acquire);
      if (p == seen) {
        relax();
        continue;
      }
      seen = p;
      answered.store(p, std::memory_order_release);
    }
  });
  std::atomic<int> sink{0};
  const auto t0 = Clock::now();
  for (int i = 1; i <= n; ++i) {
    if (omp_every > 0 && i % omp_every == 0) {
#pragma omp parallel for num_threads(2) schedule(static, 1)
      for (int t = 0; t < 2; ++t) sink.fetch_add(t, std::memory_order_relaxed);
    }
    posted.store(i, std::memory_order_release);
    while (answered.load(std::memory_order_acquire) != i) relax();
  }
  const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
  stop = true;
  helper.join();
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  std::printf("microseconds per hand-off, 2 threads, OMP_WAIT_POLICY=%s; %d repeats\n",
              policy != nullptr ? policy : "(unset)", repeats);
  for (int r = 0; r < repeats; ++r) {
    std::printf("omp region %.2f   spin hand-off %.2f   spin hand-off after omp %.2f\n",
                omp_region_us(100000), spin_handoff_us(100000, 0), spin_handoff_us(20000, 100));
  }
  return 0;
}
