#include "rla/tasks/feature_maps.h"

#include "rla/config.h"  // RLA_HAVE_PLPLOT

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "rla/data/image_io.h"
#include "rla/data/transforms.h"
#include "rla/inference/load.h"
#include "rla/util/field_error.h"

#ifdef RLA_HAVE_PLPLOT
#include <plplot/plstream.h>
#endif

namespace rla::tasks {
namespace {

// Grid geometry (pixels). Text sizes are PLplot character heights in mm (pngcairo: ~2.7 px/mm).
constexpr int64_t kGap = 8, kTitleH = 40, kGroupH = 28, kColumnH = 26, kMargin = 12;
constexpr int64_t kBarH = 14, kBarW = 300, kFootLineH = 20;
constexpr double kTitleMm = 4.4, kLabelMm = 3.3, kSmallMm = 3.0;

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) lines.push_back(line);
  return lines;
}

struct Layout {
  int64_t tile = 0, rows = 0, cols = 0, left = 0, top = 0, grid_bottom = 0, width = 0, height = 0;
  int64_t tile_x(size_t c) const { return left + static_cast<int64_t>(c) * (tile + kGap); }
  int64_t tile_y(size_t r) const { return top + static_cast<int64_t>(r) * (tile + kGap); }
};

Layout layout_of(const TileGrid& g) {
  if (g.tiles.empty() || g.tiles.front().empty()) throw std::invalid_argument("tile grid: no tiles");
  Layout l;
  l.rows = static_cast<int64_t>(g.tiles.size());
  l.cols = static_cast<int64_t>(g.tiles.front().size());
  l.tile = g.tiles.front().front().size(1);
  for (const auto& row : g.tiles) {
    if (static_cast<int64_t>(row.size()) != l.cols)
      throw std::invalid_argument("tile grid: rows of different length");
    for (const auto& t : row)
      if (t.dim() != 3 || t.size(0) != 3 || t.size(1) != l.tile || t.size(2) != l.tile ||
          t.scalar_type() != torch::kByte)
        throw std::invalid_argument(fmt::format("tile grid: every tile must be uint8 [3, {0}, {0}]", l.tile));
  }
  if (g.row_labels.size() != static_cast<size_t>(l.rows) ||
      g.column_labels.size() != static_cast<size_t>(l.cols))
    throw std::invalid_argument("tile grid: need one label per row and per column");
  size_t longest = 4;
  for (const auto& label : g.row_labels)
    for (const auto& line : split_lines(label)) longest = std::max(longest, line.size());
  l.left = kMargin + std::min<int64_t>(260, 9 * static_cast<int64_t>(longest)) + kGap;
  l.top = kTitleH + (g.column_groups.empty() ? 0 : kGroupH) + kColumnH;
  l.grid_bottom = l.tile_y(static_cast<size_t>(l.rows));
  l.width =
      std::max<int64_t>(l.tile_x(static_cast<size_t>(l.cols)) + kMargin - kGap, kBarW + 2 * kMargin + 160);
  l.height = l.grid_bottom + (g.colour_bar ? kBarH + 30 : 0) +
             static_cast<int64_t>(g.footnotes.size()) * kFootLineH + kMargin;
  return l;
}

#ifdef RLA_HAVE_PLPLOT
std::mutex& text_mutex() {
  static std::mutex m;
  return m;
}

int throw_on_plexit(const char* message) {
  throw std::runtime_error(std::string("PLplot: ") + message);
}

// '#' starts a PLplot escape sequence; a literal one is written "##".
std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '#' ? std::string("##") : std::string(1, c);
  return out;
}

// Renders every label of the grid on a white page of the grid's size (PNG at `path`).
void render_labels(const std::string& path, const TileGrid& g, const Layout& l) {
  std::lock_guard<std::mutex> lock(text_mutex());
  plstream pls;
  pls.sexit(throw_on_plexit);
  pls.sdev("pngcairo");
  pls.sfnam(path.c_str());
  pls.spage(0, 0, static_cast<PLINT>(l.width), static_cast<PLINT>(l.height), 0, 0);
  const PLINT r[] = {255, 0, 120}, gr[] = {255, 0, 120}, b[] = {255, 0, 120};
  pls.scmap0(r, gr, b, 3);
  pls.init();
  pls.adv(0);
  pls.vpor(0, 1, 0, 1);
  pls.wind(0, static_cast<PLFLT>(l.width), 0, static_cast<PLFLT>(l.height));
  // Text is centred vertically on its reference point; y counts from the bottom of the page.
  auto text = [&](double x, double y_from_top, double just, double mm, const std::string& s) {
    pls.schr(mm, 1.0);
    pls.ptex(x, static_cast<PLFLT>(l.height) - y_from_top, 1, 0, just, escape(s).c_str());
  };
  pls.col0(1);
  text(static_cast<double>(l.width) / 2, kTitleH / 2.0, 0.5, kTitleMm, g.title);
  size_t c = 0;
  for (const auto& [label, span] : g.column_groups) {
    const double x0 = static_cast<double>(l.tile_x(c)), x1 = static_cast<double>(l.tile_x(c + span) - kGap);
    const double y = kTitleH + kGroupH / 2.0;
    text((x0 + x1) / 2, y - 2, 0.5, kLabelMm * 1.1, label);
    pls.col0(2);
    const PLFLT xs[] = {x0, x1},
                ys[] = {static_cast<PLFLT>(l.height) - (y + 10), static_cast<PLFLT>(l.height) - (y + 10)};
    pls.line(2, xs, ys);
    pls.col0(1);
    c += span;
  }
  for (size_t k = 0; k < g.column_labels.size(); ++k)
    text(static_cast<double>(l.tile_x(k) + l.tile / 2), static_cast<double>(l.top - kColumnH / 2), 0.5,
         kLabelMm, g.column_labels[k]);
  for (size_t k = 0; k < g.row_labels.size(); ++k) {
    const auto lines = split_lines(g.row_labels[k]);
    const double mid = static_cast<double>(l.tile_y(k) + l.tile / 2);
    for (size_t i = 0; i < lines.size(); ++i)
      text(static_cast<double>(l.left - kGap), mid + (static_cast<double>(i) - (lines.size() - 1) / 2.0) * 18,
           1.0, kLabelMm, lines[i]);
  }
  double y = static_cast<double>(l.grid_bottom);
  if (g.colour_bar) {
    const double bar_y = y + kBarH / 2.0 + 2;
    text(static_cast<double>(l.left - kGap), bar_y, 1.0, kSmallMm, "low");
    text(static_cast<double>(l.left + kBarW + kGap), bar_y, 0.0, kSmallMm,
         "high activation (per-map min-max)");
    y += kBarH + 30;
  }
  for (const auto& line : g.footnotes) {
    text(static_cast<double>(kMargin), y - 8, 0.0, kSmallMm, line);
    y += kFootLineH;
  }
}
#endif

}  // namespace

std::vector<DepthMaps> activation_maps(models::NetworkImpl& net, const torch::Tensor& input,
                                       const std::vector<size_t>& depths) {
  const size_t blocks = net.blocks().size();
  size_t deepest = 0;
  for (auto d : depths) {
    if (d < 1 || d > blocks)
      throw std::invalid_argument(
          fmt::format("depth {} is outside 1..{} (the blocks of this model)", d, blocks));
    deepest = std::max(deepest, d);
  }
  torch::NoGradGuard no_grad;
  net.eval();
  std::map<size_t, DepthMaps> found;
  auto s = net.stem(input);
  for (size_t i = 0; i < deepest; ++i) {
    net.run_block(i, s);
    if (std::find(depths.begin(), depths.end(), i + 1) == depths.end()) continue;
    DepthMaps m;
    m.depth = i + 1;
    m.x = s.x.abs().mean(1);
    if (s.h.defined()) m.h = s.h.abs().mean(1);
    found[i + 1] = m;
  }
  std::vector<DepthMaps> out;
  for (auto d : depths) out.push_back(found.at(d));
  return out;
}

std::vector<size_t> parse_depths(const std::string& text, const models::NetworkImpl& net) {
  const auto& blocks = net.blocks();
  std::vector<size_t> out;
  if (text == "stages") {
    for (size_t i = 0; i < blocks.size(); ++i)
      if (i + 1 == blocks.size() || blocks[i + 1].stage != blocks[i].stage) out.push_back(i + 1);
    return out;
  }
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 1 || static_cast<size_t>(v) > blocks.size())
      throw util::FieldError(
          "depths", fmt::format("depths: '{}' is not a block number in 1..{} (or use \"stages\")", item,
                                blocks.size()));
    out.push_back(static_cast<size_t>(v));
  }
  if (out.empty()) throw util::FieldError("depths", "depths: no depths given");
  return out;
}

torch::Tensor normalize_map(const torch::Tensor& map) {
  auto m = map.to(torch::kFloat);
  const auto lo = m.min(), hi = m.max();
  const auto span = (hi - lo).item<float>();
  if (!(span > 0)) return torch::zeros_like(m);
  return (m - lo) / span;
}

torch::Tensor jet_colors(const torch::Tensor& v) {
  auto ramp = [&](double centre) { return (1.5 - (4 * v - centre).abs()).clamp(0, 1); };
  return torch::stack({ramp(3), ramp(2), ramp(1)});
}

torch::Tensor image_tile(const torch::Tensor& image01, int64_t size) {
  auto img = image01.to(torch::kFloat);
  if (img.size(0) == 1) img = img.expand({3, img.size(1), img.size(2)}).contiguous();
  img = data::resize_image(img, size, size).clamp(0, 1);
  return (img * 255).round().to(torch::kByte);
}

torch::Tensor overlay_map(const torch::Tensor& image01, const torch::Tensor& map, int64_t size,
                          double alpha) {
  auto grey = data::resize_image(image01.to(torch::kFloat).mean(0, true), size, size).clamp(0, 1);
  auto m = data::resize_image(normalize_map(map).unsqueeze(0), size, size).squeeze(0).clamp(0, 1);
  auto blended = (1 - alpha) * grey.expand({3, size, size}) + alpha * jet_colors(m);
  return (blended.clamp(0, 1) * 255).round().to(torch::kByte);
}

std::pair<int64_t, int64_t> tile_grid_size(const TileGrid& grid) {
  const auto l = layout_of(grid);
  return {l.width, l.height};
}

void save_tile_grid_png(const std::string& path, const TileGrid& grid) {
  const auto l = layout_of(grid);
#ifndef RLA_HAVE_PLPLOT
  throw std::runtime_error("built without PLplot (needed for the grid's labels)");
#else
  const std::string tmp = path + ".labels." + std::to_string(::getpid()) + ".png";
  {
    std::FILE* probe = std::fopen(tmp.c_str(), "wb");
    if (!probe) throw std::runtime_error(path + ": cannot write (folder missing or not writable)");
    std::fclose(probe);
  }
  torch::Tensor page;
  try {
    render_labels(tmp, grid, l);
    page = data::read_image(tmp, 3).clone();
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  std::remove(tmp.c_str());
  if (page.size(1) != l.height || page.size(2) != l.width)
    throw std::runtime_error(fmt::format("{}: label layer is {}x{}, expected {}x{}", path, page.size(2),
                                         page.size(1), l.width, l.height));
  using torch::indexing::Slice;
  for (size_t r = 0; r < grid.tiles.size(); ++r)
    for (size_t c = 0; c < grid.tiles[r].size(); ++c)
      page.index_put_(
          {Slice(), Slice(l.tile_y(r), l.tile_y(r) + l.tile), Slice(l.tile_x(c), l.tile_x(c) + l.tile)},
          grid.tiles[r][c]);
  if (grid.colour_bar) {
    auto ramp = torch::linspace(0, 1, kBarW).unsqueeze(0).expand({kBarH, kBarW});
    auto bar = (jet_colors(ramp) * 255).round().to(torch::kByte);
    page.index_put_(
        {Slice(), Slice(l.grid_bottom + 2, l.grid_bottom + 2 + kBarH), Slice(l.left, l.left + kBarW)}, bar);
  }
  data::write_png(path, page);
#endif
}

namespace {

// The model inputs [N, C, H, W] (eval transforms applied) and a row label per image.
std::pair<torch::Tensor, std::vector<std::string>> visualize_inputs(const VisualizeConfig& cfg,
                                                                    const data::DataBundle& bundle) {
  std::vector<torch::Tensor> inputs;
  std::vector<std::string> labels;
  const auto names = bundle.test->class_names();
  data::Rng rng(0);
  const auto& shape = bundle.input_shape;
  for (auto index : cfg.dataset_indices) {
    if (index < 0 || static_cast<size_t>(index) >= bundle.test->size())
      throw util::FieldError("dataset_indices",
                             fmt::format("dataset_indices: {} is outside the test split (0..{})", index,
                                         bundle.test->size() - 1));
    const auto ex = bundle.test->get(static_cast<size_t>(index));
    inputs.push_back(data::apply_all(bundle.eval_transforms, ex.image.to(torch::kFloat) / 255, rng));
    labels.push_back(fmt::format("test #{}\n{}", index, names.at(static_cast<size_t>(ex.label))));
  }
  for (const auto& path : cfg.images) {
    auto img = data::read_image(path, static_cast<int>(shape[0])).to(torch::kFloat) / 255;
    if (img.size(1) != shape[1] || img.size(2) != shape[2]) img = data::resize_image(img, shape[1], shape[2]);
    inputs.push_back(data::apply_all(bundle.eval_transforms, img, rng));
    labels.push_back(std::filesystem::path(path).filename().string());
  }
  return {torch::stack(inputs), labels};
}

// Undoes the normalisation: what the model saw, as an image with values 0..1.
torch::Tensor display_images(const torch::Tensor& inputs, const data::Normalization& n) {
  const auto c = inputs.size(1);
  auto mean = torch::ones({c}), std = torch::ones({c});
  for (int64_t i = 0; i < c; ++i) {
    mean[i] = n.mean.empty() ? 0.0 : n.mean[static_cast<size_t>(i) % n.mean.size()];
    std[i] = n.std.empty() ? 1.0 : n.std[static_cast<size_t>(i) % n.std.size()];
  }
  return (inputs * std.view({1, c, 1, 1}) + mean.view({1, c, 1, 1})).clamp(0, 1);
}

}  // namespace

TileGrid run_visualize(const VisualizeConfig& cfg) {
  if (cfg.runs.empty() || cfg.runs.size() > 2)
    throw std::invalid_argument(fmt::format("visualize takes one or two runs, got {}", cfg.runs.size()));
  if (cfg.images.empty() == cfg.dataset_indices.empty())
    throw util::FieldError({"images", "dataset_indices"}, "give either images or dataset_indices");
  if (cfg.out.empty()) throw util::FieldError("out", "out is required");
  if (cfg.tile < 32 || cfg.tile > 1024)
    throw util::FieldError("tile", fmt::format("tile {} is outside 32..1024", cfg.tile));
  if (!(cfg.alpha >= 0 && cfg.alpha <= 1))
    throw util::FieldError("alpha", fmt::format("alpha {} is outside 0..1", cfg.alpha));
  std::vector<inference::ModelBundle> models;
  for (const auto& run : cfg.runs) {
    inference::LoadOptions o;
    o.execution = inference::Execution::kEager;  // the maps are read off the eager model's blocks
    o.with_data = true;
    models.push_back(inference::load_model(run, o));
    if (models.back().data->input_shape != models.front().data->input_shape)
      throw std::invalid_argument("the two runs take inputs of different shapes; visualize them separately");
  }
  const auto& bundle = *models.front().data;
  auto [inputs, row_labels] = visualize_inputs(cfg, bundle);
  const auto shown = display_images(inputs, bundle.normalization);
  if (!cfg.images.empty()) {  // no true class for files: show the first model's prediction
    torch::NoGradGuard no_grad;
    const auto pred = models.front().net->forward(inputs).argmax(1);
    const auto names = bundle.test->class_names();
    for (size_t r = 0; r < row_labels.size(); ++r)
      row_labels[r] +=
          "\npred: " + names.at(static_cast<size_t>(pred[static_cast<int64_t>(r)].item<int64_t>()));
  }
  TileGrid g;
  g.title = fmt::format("Activation maps by depth ({} test images)", models.front().dataset);
  g.row_labels = row_labels;
  g.column_labels = {"input"};
  g.column_groups = {{"image", 1}};
  g.tiles.resize(static_cast<size_t>(inputs.size(0)));
  for (int64_t r = 0; r < inputs.size(0); ++r)
    g.tiles[static_cast<size_t>(r)].push_back(image_tile(shown[r], cfg.tile));
  for (size_t k = 0; k < models.size(); ++k) {
    auto& m = models[k];
    const auto depths = parse_depths(cfg.depths, *m.net);
    const auto maps = activation_maps(*m.net, inputs, depths);
    size_t span = 0;
    for (const auto& d : maps) {
      g.column_labels.push_back(fmt::format("block {}: x", d.depth));
      if (d.h.defined()) g.column_labels.push_back(fmt::format("block {}: h", d.depth));
      span += d.h.defined() ? 2 : 1;
      for (int64_t r = 0; r < inputs.size(0); ++r) {
        auto& row = g.tiles[static_cast<size_t>(r)];
        row.push_back(overlay_map(shown[r], d.x[r], cfg.tile, cfg.alpha));
        if (d.h.defined()) row.push_back(overlay_map(shown[r], d.h[r], cfg.tile, cfg.alpha));
      }
    }
    const bool same_name = k > 0 && models[0].model == m.model;
    g.column_groups.emplace_back(same_name ? m.model + " (" + cfg.runs[k] + ")" : m.model, span);
  }
  g.footnotes = {
      "x: channel mean of |x| (main path) after block d;  h: channel mean of |h| (RLA state) after block d",
      "each map min-max normalised to [0, 1], bilinearly upsampled and blended over the grey image (jet "
      "colours)"};
  save_tile_grid_png(cfg.out, g);
  return g;
}

}  // namespace rla::tasks
