#include "rla/plot/plot.h"

#include "rla/config.h"  // RLA_HAVE_PLPLOT

#include <unistd.h>

#include <sys/stat.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef RLA_HAVE_PLPLOT
#include <plplot/plstream.h>
#endif

namespace rla::plot {
namespace {

void check_panels(const std::vector<Chart>& panels, int columns, int panel_width, int panel_height) {
  if (panels.empty()) throw std::invalid_argument("save_charts_png: no panels to draw");
  if (columns < 1 || panel_width < 100 || panel_height < 100) {
    throw std::invalid_argument("save_charts_png: need columns >= 1 and panels of at least 100x100 pixels");
  }
  for (const auto& chart : panels) {
    for (const auto& s : chart.series) {
      if (s.x.size() != s.y.size()) {
        throw std::invalid_argument("save_charts_png: series '" + s.label + "' of chart '" + chart.title +
                                    "' has " + std::to_string(s.x.size()) + " x values but " +
                                    std::to_string(s.y.size()) + " y values");
      }
    }
  }
}

#ifdef RLA_HAVE_PLPLOT

// PLplot keeps global state (the current stream, driver tables): one chart at a time.
std::mutex& plplot_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Colour map 0: background, foreground, ten series colours (matplotlib's "tab10"), greys.
constexpr int kWhite = 0, kBlack = 1, kFirstSeries = 2, kSeriesColours = 10, kGrid = 12, kFrame = 13;
void set_colours(plstream& pls) {
  const PLINT r[] = {255, 0, 31, 255, 44, 214, 148, 140, 227, 127, 188, 23, 225, 150};
  const PLINT g[] = {255, 0, 119, 127, 160, 39, 103, 86, 119, 127, 189, 190, 225, 150};
  const PLINT b[] = {255, 0, 180, 14, 44, 40, 189, 75, 194, 127, 34, 207, 225, 150};
  pls.scmap0(r, g, b, 14);
}
const char* const kSymbols[] = {"●", "■", "▲", "◆", "▼", "⬟", "★", "✚", "✖", "⬢"};

// Characters, not bytes, of a UTF-8 string.
size_t utf8_length(const std::string& text) {
  size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

// '#' starts a PLplot escape sequence; a literal one is written "##".
std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '#' ? std::string("##") : std::string(1, c);
  return out;
}

struct Points {
  std::vector<PLFLT> x, y;  // in window coordinates (log10 x on a log axis)
};

Points finite_points(const Series& s, bool log_x) {
  Points p;
  for (size_t i = 0; i < s.x.size(); ++i) {
    if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (log_x && s.x[i] <= 0)) continue;
    p.x.push_back(log_x ? std::log10(s.x[i]) : s.x[i]);
    p.y.push_back(s.y[i]);
  }
  return p;
}

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) { lo = std::min(lo, v), hi = std::max(hi, v); }
  // Widens by `margin` of the span on each side; an empty or flat range gets a unit span.
  void pad(double margin) {
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
      const double d = std::max(0.5, std::abs(lo) * 0.05);
      lo -= d, hi += d;
      return;
    }
    const double d = (hi - lo) * margin;
    lo -= d, hi += d;
  }
};

// 1, 2 or 5 times a power of ten, the smallest at least `raw`.
double nice_step(double raw) {
  if (!(raw > 0)) return 1.0;
  const double decade = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * decade >= raw * (1.0 - 1e-9)) return m * decade;
  return 10.0 * decade;
}

// The inside corner of the viewport whose legend-sized box covers the fewest data points (lines
// sampled between points), so the legend hides as little data as possible, and how many it covers.
std::pair<PLINT, long> legend_corner(const std::vector<Points>& all, const Range& xr, const Range& yr,
                                     double box_w, double box_h) {
  const PLINT corners[] = {PL_POSITION_TOP | PL_POSITION_RIGHT, PL_POSITION_TOP | PL_POSITION_LEFT,
                           PL_POSITION_BOTTOM | PL_POSITION_RIGHT, PL_POSITION_BOTTOM | PL_POSITION_LEFT};
  int best = 0;
  long best_count = std::numeric_limits<long>::max();
  for (int c = 0; c < 4; ++c) {
    const bool right = corners[c] & PL_POSITION_RIGHT, top = corners[c] & PL_POSITION_TOP;
    const double x0 = right ? 1.0 - box_w : 0.0, y0 = top ? 1.0 - box_h : 0.0;
    long count = 0;
    for (const auto& p : all) {
      for (size_t i = 0; i < p.x.size(); ++i) {
        const int steps = i + 1 < p.x.size() ? 16 : 1;
        for (int k = 0; k < steps; ++k) {
          const double t = static_cast<double>(k) / steps;
          const double px = i + 1 < p.x.size() ? p.x[i] + t * (p.x[i + 1] - p.x[i]) : p.x[i];
          const double py = i + 1 < p.y.size() ? p.y[i] + t * (p.y[i + 1] - p.y[i]) : p.y[i];
          const double u = (px - xr.lo) / (xr.hi - xr.lo), v = (py - yr.lo) / (yr.hi - yr.lo);
          count += (u >= x0 && u <= x0 + box_w && v >= y0 && v <= y0 + box_h) ? 1 : 0;
        }
      }
    }
    if (count < best_count) best = c, best_count = count;
  }
  return {corners[best], best_count};
}

constexpr double kLegendTextScale = 0.85, kLegendSpacing = 2.0;

// The panel's viewport, as fractions of its subpage (vpor).
constexpr double kLeft = 0.13, kRight = 0.96, kBottom = 0.15, kTop = 0.89;

// The legend's width and height as fractions of the viewport, from the character height (mm),
// the longest label and the viewport's extent in mm.
std::pair<double, double> legend_box(plstream& pls, const Chart& chart) {
  size_t longest = 1;
  for (const auto& s : chart.series) longest = std::max(longest, utf8_length(s.label));
  PLFLT def_ht = 0, ht = 0, sx0 = 0, sx1 = 0, sy0 = 0, sy1 = 0;
  pls.gchr(def_ht, ht);
  pls.gspa(sx0, sx1, sy0, sy1);
  const double vp_w_mm = (sx1 - sx0) * (kRight - kLeft), vp_h_mm = (sy1 - sy0) * (kTop - kBottom);
  const auto n = static_cast<double>(chart.series.size());
  return {0.08 + (2.0 + 0.6 * static_cast<double>(longest)) * ht * kLegendTextScale / vp_w_mm,
          (kLegendSpacing * n + 1.5) * ht * kLegendTextScale / vp_h_mm};
}

// `box`: the legend's size, legend_box.
void draw_legend(plstream& pls, const Chart& chart, const std::vector<Points>& all, const Range& xr,
                 const Range& yr, bool markers, std::pair<double, double> box) {
  const auto n = static_cast<PLINT>(chart.series.size());
  std::vector<std::string> labels;
  for (const auto& s : chart.series) labels.push_back(escape(s.label));
  const auto [box_w, box_h] = box;
  const PLINT position =
      PL_POSITION_VIEWPORT | PL_POSITION_INSIDE | legend_corner(all, xr, yr, box_w, box_h).first;

  std::vector<const char*> text, symbols;
  std::vector<PLINT> opts, text_colours, colours, styles, symbol_numbers;
  std::vector<PLFLT> widths, symbol_scales;
  for (PLINT i = 0; i < n; ++i) {
    text.push_back(labels[i].c_str());
    symbols.push_back(kSymbols[i % 10]);
    opts.push_back(PL_LEGEND_LINE | (markers ? PL_LEGEND_SYMBOL : 0));
    text_colours.push_back(kBlack);
    colours.push_back(kFirstSeries + i % kSeriesColours);
    styles.push_back(1);
    widths.push_back(2.0);
    symbol_numbers.push_back(1);
    symbol_scales.push_back(0.9);
  }
  PLFLT legend_w = 0, legend_h = 0;
  pls.legend(&legend_w, &legend_h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, position, 0.02, 0.03, 0.08,
             kWhite, kFrame, 1, 0, 0, n, opts.data(), 0.8, kLegendTextScale, kLegendSpacing, 0.0,
             text_colours.data(), text.data(), nullptr, nullptr, nullptr, nullptr, colours.data(),
             styles.data(), widths.data(), colours.data(), symbol_scales.data(), symbol_numbers.data(),
             symbols.data());
}

// PLplot numbers a log axis only at decades (one label on a short range, as "10^1"); write
// plain numbers at 1-2-5 steps instead (decades only on long ranges). lo/hi are log10 units.
void label_log_x(plstream& pls, double lo, double hi) {
  const std::vector<double> steps = hi - lo <= 2.5 ? std::vector<double>{1, 2, 5} : std::vector<double>{1};
  for (int d = static_cast<int>(std::floor(lo)); d <= static_cast<int>(std::ceil(hi)); ++d) {
    for (double m : steps) {
      const double v = m * std::pow(10.0, d), lv = std::log10(v);
      if (lv < lo || lv > hi) continue;
      char text[32];
      std::snprintf(text, sizeof(text), "%g", v);
      pls.mtex("b", 1.5, (lv - lo) / (hi - lo), 0.5, text);
    }
  }
}

void draw_panel(plstream& pls, const Chart& chart) {
  std::vector<Points> all;
  Range xr, yr;
  size_t longest_series = 0;
  for (const auto& s : chart.series) {
    all.push_back(finite_points(s, chart.log_x));
    for (size_t i = 0; i < all.back().x.size(); ++i) xr.add(all.back().x[i]), yr.add(all.back().y[i]);
    longest_series = std::max(longest_series, all.back().x.size());
  }
  xr.pad(0.03);
  yr.pad(0.06);
  const bool markers = longest_series <= 30;

  pls.adv(0);
  pls.schr(0, 1.0);
  pls.vpor(kLeft, kRight, kBottom, kTop);
  // Where every inside corner of the panel would put the legend over data, the y range grows
  // upward until the band the legend needs at the top is empty (unless the legend would take
  // most of the panel); the y axis is numbered only up to the data's range (`data_hi`).
  const double data_hi = yr.hi;
  const auto box = chart.series.empty() ? std::pair<double, double>{} : legend_box(pls, chart);
  if (!chart.series.empty()) {
    const auto [box_w, box_h] = box;
    if (legend_corner(all, xr, yr, box_w, box_h).second > 0 && box_h < 0.6)
      yr.hi = yr.lo + (yr.hi - yr.lo) / (1.0 - box_h - 0.03);
  }
  const bool headroom = yr.hi > data_hi;
  // One y step for the grid, the ticks and the numbers (PLplot would choose each range's own).
  const double y_step = headroom ? nice_step((data_hi - yr.lo) / 7.0) : 0.0;
  pls.wind(xr.lo, xr.hi, yr.lo, yr.hi);
  // Grid first (light, dotted), then the frame, ticks and numbers on top of it.
  pls.col0(kGrid);
  pls.width(1.0);
  pls.lsty(2);
  // Whole-number x ticks for counts: PLplot's automatic step would label epochs 1.5, 2.5.
  const double x_step =
      chart.integer_x && !chart.log_x ? std::max(1.0, std::ceil((xr.hi - xr.lo) / 8.0)) : 0.0;
  const PLINT x_sub = chart.integer_x ? 1 : 0;
  pls.box(chart.log_x ? "gl" : "g", x_step, x_sub, "g", y_step, 0);
  pls.lsty(1);
  pls.col0(kBlack);
  pls.box(chart.log_x ? "bcstl" : "bcnst", x_step, x_sub, headroom ? "bcst" : "bcnstv", y_step, 0);
  if (headroom) {  // the numbers, in a viewport of the same scale that ends at data_hi
    pls.vpor(kLeft, kRight, kBottom, kBottom + (kTop - kBottom) * (data_hi - yr.lo) / (yr.hi - yr.lo));
    pls.wind(xr.lo, xr.hi, yr.lo, data_hi);
    pls.box("", 0, 0, "bnstv", y_step, 0);
    pls.vpor(kLeft, kRight, kBottom, kTop);
    pls.wind(xr.lo, xr.hi, yr.lo, yr.hi);
  }
  if (chart.log_x) label_log_x(pls, xr.lo, xr.hi);
  pls.mtex("b", 3.2, 0.5, 0.5, escape(chart.x_label).c_str());
  pls.mtex("l", 3.6, 0.5, 0.5, escape(chart.y_label).c_str());
  // The title shrinks until it fits the panel (a character is about 0.6 of its height wide). It
  // is centred on the viewport, which leaves 0.455 of the panel's width on its right.
  PLFLT def_ht = 0, ht = 0, sx0 = 0, sx1 = 0, sy0 = 0, sy1 = 0;
  pls.gchr(def_ht, ht);
  pls.gspa(sx0, sx1, sy0, sy1);
  const double title_mm = 0.6 * ht * static_cast<double>(utf8_length(chart.title));
  const double room_mm = 0.9 * (sx1 - sx0);
  pls.schr(0, std::min(1.2, title_mm > 0 ? room_mm / title_mm : 1.2));
  pls.mtex("t", 1.2, 0.5, 0.5, escape(chart.title).c_str());
  pls.schr(0, 1.0);

  for (size_t i = 0; i < all.size(); ++i) {
    const auto& p = all[i];
    if (p.x.empty()) continue;
    pls.col0(kFirstSeries + static_cast<PLINT>(i % kSeriesColours));
    pls.width(2.0);
    if (p.x.size() > 1) pls.line(static_cast<PLINT>(p.x.size()), p.x.data(), p.y.data());
    if (markers) {
      pls.schr(0, 0.8);
      pls.string(static_cast<PLINT>(p.x.size()), p.x.data(), p.y.data(), kSymbols[i % 10]);
      pls.schr(0, 1.0);
    }
  }
  pls.width(1.0);
  if (!chart.series.empty()) draw_legend(pls, chart, all, xr, yr, markers, box);
}

// Whether the pngcairo driver is installed. Asked of a stream that is not yet initialised: an
// unknown device would make plinit() prompt for one on stdin.
bool has_pngcairo(plstream& pls) {
  // The caller provides the arrays and their capacity; PLplot fills in static strings.
  std::vector<const char*> menu(256, nullptr), names(256, nullptr);
  int n = static_cast<int>(names.size());
  const char** menu_ptr = menu.data();
  const char** names_ptr = names.data();
  pls.gFileDevs(&menu_ptr, &names_ptr, &n);
  bool found = false;
  for (int i = 0; i < n && i < static_cast<int>(names.size()); ++i) {
    found = found || (names[i] && std::string(names[i]) == "pngcairo");
  }
  return found;
}

// PLplot's default reaction to a fatal error is exit(); turn it into an exception instead.
int throw_on_plexit(const char* message) {
  throw std::runtime_error(std::string("PLplot: ") + message);
}

#endif  // RLA_HAVE_PLPLOT

}  // namespace

bool png_charts_available() {
#ifdef RLA_HAVE_PLPLOT
  std::lock_guard<std::mutex> lock(plplot_mutex());
  plstream pls;
  return has_pngcairo(pls);
#else
  return false;
#endif
}

void save_charts_png(const std::string& path, const std::vector<Chart>& panels, int columns, int panel_width,
                     int panel_height) {
  check_panels(panels, columns, panel_width, panel_height);
#ifndef RLA_HAVE_PLPLOT
  throw std::runtime_error("built without PLplot");
#else
  std::lock_guard<std::mutex> lock(plplot_mutex());
  const int cols = std::min<int>(columns, static_cast<int>(panels.size()));
  const int rows = (static_cast<int>(panels.size()) + cols - 1) / cols;
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + ".png";
  {
    // Fail here, with the path, rather than inside PLplot when it opens the file.
    std::FILE* probe = std::fopen(tmp.c_str(), "wb");
    if (!probe) throw std::runtime_error(path + ": cannot write chart (folder missing or not writable)");
    std::fclose(probe);
  }
  try {
    plstream pls;  // a fresh stream (plmkstrm); its destructor ends it and flushes the file
    if (!has_pngcairo(pls)) {
      throw std::runtime_error("PLplot's pngcairo driver is not installed (package plplot-driver-cairo)");
    }
    pls.sexit(throw_on_plexit);
    pls.sdev("pngcairo");
    pls.sfnam(tmp.c_str());
    pls.spage(0, 0, cols * panel_width, rows * panel_height, 0, 0);
    set_colours(pls);
    pls.ssub(cols, rows);
    pls.init();
    for (const auto& chart : panels) draw_panel(pls, chart);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  struct stat st {};
  if (::stat(tmp.c_str(), &st) != 0 || st.st_size == 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": PLplot wrote no image");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": cannot replace the chart file");
  }
#endif
}

}  // namespace rla::plot
