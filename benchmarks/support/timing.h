#pragma once
// Wall-clock timing for the benchmark programs: two untimed runs, then `reps` timed ones.
#include <algorithm>
#include <chrono>
#include <vector>

namespace rla::bench {

struct Timing {
  double median_ms, min_ms;
};

template <class F>
Timing time_runs(F&& run, int reps) {
  run();
  run();
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front()};
}

}  // namespace rla::bench
