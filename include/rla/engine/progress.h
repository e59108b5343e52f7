#pragma once
// Progress for long loops: a redrawn bar with rate and ETA on a terminal, plain periodic lines
// otherwise (logs, CI).
#include <chrono>
#include <cstdio>
#include <string>

namespace rla::engine {

class Progress {
 public:
  /// total: steps in the loop; unit: what a step's `amount` counts (e.g. "img").
  Progress(std::string label, size_t total, std::string unit = "img", std::FILE* out = stderr);
  /// Marks one more step done, covering `amount` units; `status` is shown after the bar.
  void step(size_t amount, const std::string& status = "");
  /// A new label and total for the rest of the loop (e.g. a schedule shortened on the way).
  void retarget(std::string label, size_t total);
  /// Ends the line (terminal) or prints the final line (log).
  void finish(const std::string& status = "");
  double elapsed_seconds() const;
  double rate() const;  ///< units per second so far

 private:
  void draw(bool final, const std::string& status);
  std::string label_, unit_;
  size_t total_, done_ = 0, amount_ = 0;
  std::FILE* out_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// "1h02m", "4m05s", "12s".
std::string format_duration(double seconds);

}  // namespace rla::engine
