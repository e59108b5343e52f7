#include "rla/tasks/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "rla/models/registry.h"
#include "rla/models/summary.h"

namespace rla::tasks {
namespace fs = std::filesystem;

std::optional<RunRecord> read_run(const std::string& dir) {
  if (!fs::exists(engine::config_path(dir))) return std::nullopt;
  RunRecord r;
  r.dir = dir;
  r.config = engine::read_train_config(dir);
  r.metrics = engine::read_metrics(dir);
  if (auto result = engine::read_result(dir)) {
    r.test_error = 100.0 - result->test_top1;
    if (result->val_top1) r.val_error = 100.0 - *result->val_top1;
  } else if (r.config.data.val_size == 0 && !r.metrics.empty() && r.metrics.back().epoch >= r.config.epochs) {
    r.test_error = 100.0 - r.metrics.back().val_top1;
  }
  return r;
}

std::vector<RunRecord> find_runs(const std::string& path) {
  if (auto r = read_run(path)) return {*r};
  if (!fs::is_directory(path)) throw std::invalid_argument(path + ": not a run folder or a folder of runs");
  std::vector<std::string> dirs;
  for (const auto& e : fs::recursive_directory_iterator(path))
    if (e.is_directory() && fs::exists(engine::config_path(e.path().string())))
      dirs.push_back(e.path().string());
  std::sort(dirs.begin(), dirs.end());
  std::vector<RunRecord> out;
  for (const auto& d : dirs)
    if (auto r = read_run(d)) out.push_back(std::move(*r));
  return out;
}

double Stat::mean() const {
  if (values.empty()) return 0.0;
  double s = 0;
  for (double v : values) s += v;
  return s / static_cast<double>(values.size());
}

double Stat::std() const {
  if (values.size() < 2) return 0.0;
  const double m = mean();
  double s = 0;
  for (double v : values) s += (v - m) * (v - m);
  return std::sqrt(s / static_cast<double>(values.size() - 1));
}

namespace {

std::string config_label(const models::ModelConfig& c) {
  std::vector<std::string> parts;
  if (c.rla_channels) parts.push_back(fmt::format("k {}", *c.rla_channels));
  if (c.aggregation && *c.aggregation != models::Aggregation::kRla)
    parts.push_back(models::to_string(*c.aggregation));
  if (c.state_input) parts.push_back("reads " + models::to_string(*c.state_input));
  if (c.zero_init_residual)
    parts.push_back(fmt::format("zero-init {}", *c.zero_init_residual ? "on" : "off"));
  return parts.empty() ? "" : fmt::format(" ({})", fmt::join(parts, ", "));
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void count_model(ModelRow& row, const RunRecord& r) {
  models::ModelConfig mc = r.config.model_config;
  auto net = models::create_model(r.config.model, mc);
  row.params = models::count_parameters(*net);
  row.macs = r.config.input_shape.size() == 3 ? models::summarize(*net, r.config.input_shape).macs : -1;
}

}  // namespace

std::vector<ModelRow> summarize_runs(const std::vector<RunRecord>& runs,
                                     const std::vector<std::string>& order, bool by_config) {
  std::vector<std::string> models = order;
  for (const auto& r : runs)
    if (std::find(models.begin(), models.end(), r.config.model) == models.end())
      models.push_back(r.config.model);
  std::vector<ModelRow> rows;
  for (const auto& name : models) {
    std::vector<ModelRow> group;  // one per configuration (or one in all)
    for (const auto& r : runs) {
      if (r.config.model != name) continue;
      const std::string label =
          name + (by_config ? config_label(r.config.model_config) +
                                  (r.config.recipe.empty() ? "" : " [recipe " + r.config.recipe + "]")
                            : "");
      auto it = std::find_if(group.begin(), group.end(), [&](const ModelRow& m) { return m.label == label; });
      if (it == group.end()) {
        ModelRow row;
        row.label = label;
        row.model = name;
        group.push_back(row);
        it = group.end() - 1;
        count_model(*it, r);
      }
      ++it->runs;
      if (!r.finished()) continue;
      ++it->finished;
      it->test_error.values.push_back(*r.test_error);
      if (r.val_error) it->val_error.values.push_back(*r.val_error);
      std::vector<double> speeds;
      for (const auto& m : r.metrics) speeds.push_back(m.train_img_per_s);
      it->img_per_s.values.push_back(median(speeds));
    }
    if (group.empty()) {  // asked for, never run: counts only
      ModelRow row;
      row.label = row.model = name;
      auto net = models::create_model(name);
      row.params = models::count_parameters(*net);
      row.macs = -1;
      group.push_back(row);
    }
    rows.insert(rows.end(), group.begin(), group.end());
  }
  return rows;
}

double t_quantile_975(double df) {
  // t_{0.975} for df = 1..30, then 40, 60, 120, infinity (standard tables).
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (!(df >= 1.0)) throw std::invalid_argument(fmt::format("t quantile: df must be >= 1, got {}", df));
  if (df >= 120) return 1.980 + (1.960 - 1.980) * std::min(1.0, (df - 120) / 880);
  if (df >= 60) return 2.000 + (1.980 - 2.000) * (df - 60) / 60;
  if (df >= 40) return 2.021 + (2.000 - 2.021) * (df - 40) / 20;
  if (df >= 30) return 2.042 + (2.021 - 2.042) * (df - 30) / 10;
  // Linear in 1/df between the integer entries (t is close to linear in 1/df).
  const auto lo = static_cast<size_t>(std::floor(df));
  if (static_cast<double>(lo) == df) return table[lo - 1];
  const double a = table[lo - 1], b = table[lo];
  const double w = (1.0 / static_cast<double>(lo) - 1.0 / df) /
                   (1.0 / static_cast<double>(lo) - 1.0 / static_cast<double>(lo + 1));
  return a + (b - a) * w;
}

std::string Comparison::verdict() const {
  if (!valid) return "too few runs";
  if (low > 0) return fmt::format("{} higher error", a);
  if (high < 0) return fmt::format("{} lower error", a);
  return "within noise";
}

Comparison compare_test_error(const ModelRow& a, const ModelRow& b) {
  Comparison c;
  c.a = a.label;
  c.b = b.label;
  c.na = a.test_error.values.size();
  c.nb = b.test_error.values.size();
  c.diff = a.test_error.mean() - b.test_error.mean();
  if (c.na < 2 || c.nb < 2) return c;
  const double va = a.test_error.std() * a.test_error.std() / static_cast<double>(c.na);
  const double vb = b.test_error.std() * b.test_error.std() / static_cast<double>(c.nb);
  const double se = std::sqrt(va + vb);
  // Welch–Satterthwaite degrees of freedom; equal variances of 0 leave a zero-width interval.
  const double df =
      se > 0 ? (va + vb) * (va + vb) /
                   (va * va / static_cast<double>(c.na - 1) + vb * vb / static_cast<double>(c.nb - 1))
             : static_cast<double>(c.na + c.nb - 2);
  const double half = t_quantile_975(std::max(1.0, df)) * se;
  c.low = c.diff - half;
  c.high = c.diff + half;
  c.valid = true;
  return c;
}

std::string markdown_table(const std::vector<ModelRow>& rows) {
  auto stat = [](const Stat& s) {
    if (s.values.empty()) return std::string("—");
    if (s.values.size() == 1) return fmt::format("{:.2f} (one run)", s.mean());
    return fmt::format("{:.2f} ± {:.2f}", s.mean(), s.std());
  };
  std::string out =
      "| model | parameters | MACs / image | train img/s | validation error (%) | test error (%) | runs "
      "finished |\n"
      "|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    const std::string macs = r.macs < 0 ? "—" : fmt::format("{:.1f} M", static_cast<double>(r.macs) / 1e6);
    const std::string speed = r.img_per_s.values.empty() ? "—" : fmt::format("{:.0f}", r.img_per_s.mean());
    out += fmt::format("| {} | {} ({:.3f} M) | {} | {} | {} | {} | {} of {} started |\n", r.label,
                       models::with_commas(r.params), static_cast<double>(r.params) / 1e6, macs, speed,
                       stat(r.val_error), stat(r.test_error), r.finished, r.runs);
  }
  return out;
}

std::string markdown_comparisons(const std::vector<Comparison>& comparisons) {
  std::string out =
      "| comparison (A vs B) | test error A − B (points) | 95 % interval (Welch, over seeds) | runs | "
      "verdict |\n|---|---:|---:|---:|---|\n";
  for (const auto& c : comparisons) {
    const std::string interval = c.valid ? fmt::format("[{:+.2f}, {:+.2f}]", c.low, c.high) : "—";
    out += fmt::format("| {} vs {} | {:+.2f} | {} | {} + {} | {} |\n", c.a, c.b, c.diff, interval, c.na, c.nb,
                       c.verdict());
  }
  return out;
}

}  // namespace rla::tasks
