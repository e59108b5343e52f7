#include "rla/engine/progress.h"

#include <unistd.h>

#include <cmath>

#include <fmt/format.h>

namespace rla::engine {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto total = static_cast<int64_t>(s + 0.5);
  if (total >= 3600) return fmt::format("{}h{:02d}m", total / 3600, (total % 3600) / 60);
  if (total >= 60) return fmt::format("{}m{:02d}s", total / 60, total % 60);
  return fmt::format("{}s", total);
}

Progress::Progress(std::string label, size_t total, std::string unit, std::FILE* out)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      out_(out),
      tty_(isatty(fileno(out)) != 0) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::rate() const {
  const double e = elapsed_seconds();
  return e > 0 ? static_cast<double>(amount_) / e : 0.0;
}

void Progress::step(size_t amount, const std::string& status) {
  ++done_;
  amount_ += amount;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since >= (tty_ ? 0.2 : 15.0)) {
    last_draw_ = now;
    draw(false, status);
  }
}

void Progress::retarget(std::string label, size_t total) {
  label_ = std::move(label);
  total_ = total;
}

void Progress::finish(const std::string& status) {
  draw(true, status);
}

void Progress::draw(bool final, const std::string& status) {
  const double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  const double elapsed = elapsed_seconds();
  const double eta =
      done_ ? elapsed * (static_cast<double>(total_) - static_cast<double>(done_)) / done_ : NAN;
  std::string timing =
      final ? fmt::format("{} total", format_duration(elapsed))
            : fmt::format("{} elapsed, ETA {}", format_duration(elapsed), format_duration(eta));
  if (tty_) {
    const int width = 24;
    const int filled = static_cast<int>(frac * width);
    fmt::print(out_, "\r{} [{}{}] {:>3.0f}% {}/{} | {:.0f} {}/s | {} | {}\x1b[K", label_,
               std::string(filled, '#'), std::string(width - filled, '.'), 100 * frac, done_, total_, rate(),
               unit_, timing, status);
    if (final) fmt::print(out_, "\n");
  } else {
    fmt::print(out_, "{} {}/{} ({:.0f}%) | {:.0f} {}/s | {} | {}\n", label_, done_, total_, 100 * frac,
               rate(), unit_, timing, status);
  }
  std::fflush(out_);
}

}  // namespace rla::engine
