#pragma once
// Line charts as PNG files, drawn with PLplot (pngcairo device): training curves, depth sweeps,
// accuracy-vs-MACs trade-offs. Several charts go on one page as a grid of panels.
#include <string>
#include <vector>

namespace rla::plot {

/// One curve: points (x[i], y[i]); non-finite points are skipped.
struct Series {
  std::string label;
  std::vector<double> x, y;
};

/// One panel. Axis labels should carry units, e.g. "MACs per image (M)".
struct Chart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool log_x = false;      ///< logarithmic x axis (points with x <= 0 are skipped)
  bool integer_x = false;  ///< x counts something (epochs): ticks and numbers at whole numbers only
};

/// Draws `panels` in a grid of `columns` columns, each panel_width x panel_height pixels, and
/// writes the PNG to `path` atomically (temporary file + rename). White background, one colour
/// per series, markers on series of at most 30 points, a legend placed in the emptiest corner.
/// Throws std::invalid_argument for malformed charts (x/y length mismatch, no panels),
/// std::runtime_error("built without PLplot") when PLplot was not found at build time, and
/// std::runtime_error naming the path when the file cannot be written.
void save_charts_png(const std::string& path, const std::vector<Chart>& panels, int columns = 2,
                     int panel_width = 640, int panel_height = 480);

/// Whether save_charts_png can work in this build (PLplot and its pngcairo driver present).
bool png_charts_available();

}  // namespace rla::plot
