#include "rla/tasks/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "rla/data/sources.h"
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
    auto percent = [&dir](const char* key, double v) {
      if (!(v >= 0 && v <= 100))
        throw std::invalid_argument(
            fmt::format("{}: {} {} is not a percentage (0 to 100)", engine::result_path(dir), key, v));
      return v;
    };
    r.test_error = 100.0 - percent("test_top1", result->test_top1);
    if (result->val_top1) r.val_error = 100.0 - percent("val_top1", *result->val_top1);
  } else if (r.config.data.val_size == 0 && !r.metrics.empty() &&
             r.metrics.back().epoch >= r.config.run.epochs) {
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
  return util::mean(values);
}

double Stat::std() const {
  return util::sample_std(values);
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
                                  (r.config.run.recipe.empty() ? "" : " [recipe " + r.config.run.recipe + "]")
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
      it->seeds.push_back(r.seed());
      if (r.val_error) {
        it->val_error.values.push_back(*r.val_error);
        it->val_seeds.push_back(r.seed());
      }
      std::vector<double> speeds;
      for (const auto& m : r.metrics) speeds.push_back(m.train_img_per_s);
      if (!speeds.empty()) it->img_per_s.values.push_back(median(speeds));
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

namespace {

// A row being compared. Two finished runs of one seed in it (a copied or repeated run folder)
// would count as two samples and be paired by whichever comes first: refused.
const ModelRow& find_row(const std::vector<ModelRow>& rows, const std::string& label) {
  for (const auto& r : rows) {
    if (r.label != label) continue;
    for (size_t i = 0; i < r.seeds.size(); ++i)
      if (std::find(r.seeds.begin() + static_cast<std::ptrdiff_t>(i) + 1, r.seeds.end(), r.seeds[i]) !=
          r.seeds.end())
        throw std::invalid_argument(fmt::format(
            "comparison: '{}' has two finished runs with seed {}; keep one run per seed", label, r.seeds[i]));
    return r;
  }
  throw std::invalid_argument(fmt::format("comparison: no row '{}' among the runs", label));
}

const Stat& metric_of(const ModelRow& row, Metric metric) {
  return metric == Metric::kTest ? row.test_error : row.val_error;
}

std::string side(double diff) {
  return diff < 0 ? "A lower" : "A higher";
}

}  // namespace

std::vector<Comparison> compare_family(const std::vector<ModelRow>& rows,
                                       const std::vector<ComparisonSpec>& specs,
                                       const FamilyOptions& options) {
  std::vector<Comparison> out;
  std::vector<size_t> tested;  // indices of valid comparisons: the family Holm corrects over
  for (const auto& spec : specs) {
    Comparison c;
    c.spec = spec;
    const auto& a = metric_of(find_row(rows, spec.a), options.metric);
    const auto& b = metric_of(find_row(rows, spec.b), options.metric);
    c.na = a.values.size();
    c.nb = b.values.size();
    c.welch.diff = a.mean() - b.mean();
    c.valid = c.na >= 2 && c.nb >= 2;
    if (c.valid) {
      c.welch = util::welch(a.values, b.values);
      c.p = spec.type == Hypothesis::kSuperiority ? c.welch.p_two_sided()
                                                  : c.welch.p_equivalence(options.margin);
      c.ci95 = c.welch.interval(0.95);
      tested.push_back(out.size());
    }
    out.push_back(c);
  }
  std::vector<double> p;
  for (auto i : tested) p.push_back(out[i].p);
  const auto adjusted = util::holm_adjust(p);
  const auto levels = util::holm_levels(p, options.alpha);
  const double m = static_cast<double>(tested.size());
  for (size_t k = 0; k < tested.size(); ++k) {
    auto& c = out[tested[k]];
    c.p_holm = adjusted[k];
    c.level = levels[k];
    const bool rejected = c.p_holm <= options.alpha;
    c.bonferroni = 1.0 - options.alpha / m;
    c.ci_bonferroni = c.welch.interval(c.bonferroni);
    if (c.spec.type == Hypothesis::kSuperiority) {
      c.ci_holm = c.welch.interval(1.0 - c.level);
      c.verdict = rejected ? fmt::format("{} ({})", c.welch.diff < 0 ? "holds" : "fails", side(c.welch.diff))
                           : "inconclusive";
    } else {
      c.ci_holm = c.welch.interval(1.0 - 2.0 * c.level);
      const bool outside = c.ci_bonferroni.first > options.margin || c.ci_bonferroni.second < -options.margin;
      if (rejected)
        c.verdict = fmt::format("holds (within ±{:g})", options.margin);
      else if (outside)
        c.verdict = fmt::format("fails (not within ±{:g}, {})", options.margin, side(c.welch.diff));
      else
        c.verdict = "inconclusive";
    }
  }
  for (auto& c : out)
    if (!c.valid) c.verdict = "too few runs";
  return out;
}

std::vector<int64_t> read_test_predictions(const RunRecord& run) {
  std::ifstream in(engine::test_predictions_path(run.dir));
  std::vector<int64_t> out;
  for (int64_t p; in >> p;) out.push_back(p);
  return out;
}

std::vector<int64_t> test_labels(const RunRecord& run) {
  const auto data = data::open_data(run.config.data);
  std::vector<int64_t> labels(data.test->size());
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = data.test->label(i);
  return labels;
}

PairedComparison compare_paired(const std::vector<RunRecord>& runs, const std::vector<ModelRow>& rows,
                                const ComparisonSpec& spec, const std::vector<int64_t>& labels) {
  PairedComparison pc;
  pc.spec = spec;
  const auto& a = find_row(rows, spec.a);
  const auto& b = find_row(rows, spec.b);
  auto run_of = [&runs](const ModelRow& row, uint64_t seed) -> const RunRecord* {
    for (const auto& r : runs)
      if (r.finished() && r.config.model == row.model && r.seed() == seed) return &r;
    return nullptr;
  };
  std::vector<double> ea, eb;
  bool with_mcnemar = !labels.empty();
  for (size_t i = 0; i < a.seeds.size(); ++i) {
    const auto seed = a.seeds[i];
    const auto j = std::find(b.seeds.begin(), b.seeds.end(), seed) - b.seeds.begin();
    if (j == static_cast<std::ptrdiff_t>(b.seeds.size())) continue;
    pc.seeds.push_back(seed);
    ea.push_back(a.test_error.values[i]);
    eb.push_back(b.test_error.values[static_cast<size_t>(j)]);
    pc.differences.push_back(ea.back() - eb.back());
    if (!with_mcnemar) continue;
    const auto pa = read_test_predictions(*run_of(a, seed));
    const auto pb = read_test_predictions(*run_of(b, seed));
    if (pa.size() != labels.size() || pb.size() != labels.size()) {
      with_mcnemar = false;
      continue;
    }
    PairedComparison::Counts n;
    for (size_t k = 0; k < labels.size(); ++k) {
      const bool ra = pa[k] == labels[k], rb = pb[k] == labels[k];
      n.b += ra && !rb ? 1 : 0;
      n.c += rb && !ra ? 1 : 0;
    }
    n.p = util::mcnemar_exact(n.b, n.c);
    pc.per_seed.push_back(n);
    pc.pooled.b += n.b;
    pc.pooled.c += n.c;
  }
  if (!with_mcnemar) pc.per_seed.clear();
  pc.pooled.p = pc.per_seed.empty() ? 1.0 : util::mcnemar_exact(pc.pooled.b, pc.pooled.c);
  pc.valid = pc.seeds.size() >= 2;
  if (pc.valid) pc.paired = util::paired(ea, eb);
  return pc;
}

std::string markdown_table(const std::vector<ModelRow>& rows, bool with_test) {
  auto stat = [](const Stat& s) {
    if (s.values.empty()) return std::string("—");
    if (s.values.size() == 1) return fmt::format("{:.2f} (one run)", s.mean());
    return fmt::format("{:.2f} ± {:.2f}", s.mean(), s.std());
  };
  auto seeds = [](const std::vector<uint64_t>& of, const Stat& s) {
    std::vector<std::string> parts;
    for (size_t i = 0; i < s.values.size() && i < of.size(); ++i)
      parts.push_back(fmt::format("{}: {:.2f}", of[i], s.values[i]));
    return parts.empty() ? std::string("—") : fmt::format("{}", fmt::join(parts, ", "));
  };
  std::string out = "| model | parameters | MACs / image | train img/s | validation error (%) |";
  out += with_test ? " test error (%) | test error per seed |" : " validation error per seed |";
  out += with_test ? " runs finished |\n|---|---:|---:|---:|---:|---:|---|---:|\n"
                   : " runs finished |\n|---|---:|---:|---:|---:|---|---:|\n";
  for (const auto& r : rows) {
    const std::string macs = r.macs < 0 ? "—" : fmt::format("{:.1f} M", static_cast<double>(r.macs) / 1e6);
    const std::string speed = r.img_per_s.values.empty() ? "—" : fmt::format("{:.0f}", r.img_per_s.mean());
    out += fmt::format("| {} | {} ({:.3f} M) | {} | {} | {} |", r.label, models::with_commas(r.params),
                       static_cast<double>(r.params) / 1e6, macs, speed, stat(r.val_error));
    out += with_test ? fmt::format(" {} | {} |", stat(r.test_error), seeds(r.seeds, r.test_error))
                     : fmt::format(" {} |", seeds(r.val_seeds, r.val_error));
    out += fmt::format(" {} of {} started |\n", r.finished, r.runs);
  }
  return out;
}

std::string markdown_comparisons(const std::vector<Comparison>& comparisons, const FamilyOptions& options) {
  const char* what = options.metric == Metric::kTest ? "test" : "validation";
  std::string out = fmt::format(
      "| comparison (A vs B) | hypothesis | {} error A − B (points) | 95 % interval | raw p | Holm p | "
      "Holm-level interval | runs | verdict (α = {:g}, margin ±{:g}) |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---|\n",
      what, options.alpha, options.margin);
  auto interval = [](const std::pair<double, double>& ci) {
    return fmt::format("[{:+.2f}, {:+.2f}]", ci.first, ci.second);
  };
  for (const auto& c : comparisons) {
    const bool eq = c.spec.type == Hypothesis::kEquivalence;
    if (!c.valid) {
      out += fmt::format("| {} vs {} | {} | {:+.2f} | — | — | — | — | {} + {} | {} |\n", c.spec.a, c.spec.b,
                         eq ? "equivalence" : "superiority", c.welch.diff, c.na, c.nb, c.verdict);
      continue;
    }
    // An equivalence verdict of "fails" reads another interval than the Holm-level one: the
    // two-sided Bonferroni-level interval, shown beside the verdict it decides.
    const auto decides = eq ? fmt::format("; not-equivalent test: {} ({:.2f} %)", interval(c.ci_bonferroni),
                                          100.0 * c.bonferroni)
                            : std::string();
    out += fmt::format(
        "| {} vs {} | {} | {:+.2f} | {} | {:.4f} | {:.4f} | {} ({:.2f} %) | {} + {} | **{}**{} |\n", c.spec.a,
        c.spec.b, eq ? "equivalence (TOST)" : "superiority", c.welch.diff, interval(c.ci95), c.p, c.p_holm,
        interval(c.ci_holm), 100.0 * (1.0 - (eq ? 2.0 : 1.0) * c.level), c.na, c.nb, c.verdict, decides);
  }
  return out;
}

std::string markdown_paired(const std::vector<PairedComparison>& comparisons) {
  std::string out =
      "| comparison (A vs B) | seeds | test error A − B per seed | paired mean | paired 95 % interval | "
      "McNemar per seed: only A right / only B right (p) | pooled over seeds (p, descriptive) |\n"
      "|---|---|---|---:|---:|---|---|\n";
  for (const auto& c : comparisons) {
    std::vector<std::string> diffs, mcn;
    for (size_t i = 0; i < c.seeds.size(); ++i)
      diffs.push_back(fmt::format("{}: {:+.2f}", c.seeds[i], c.differences[i]));
    for (size_t i = 0; i < c.per_seed.size(); ++i)
      mcn.push_back(
          fmt::format("{}: {} / {} ({:.3g})", c.seeds[i], c.per_seed[i].b, c.per_seed[i].c, c.per_seed[i].p));
    const auto ci = c.valid ? c.paired.interval(0.95) : std::pair<double, double>{0, 0};
    out +=
        fmt::format("| {} vs {} | {} | {} | {} | {} | {} | {} |\n", c.spec.a, c.spec.b, c.seeds.size(),
                    diffs.empty() ? "—" : fmt::format("{}", fmt::join(diffs, ", ")),
                    c.valid ? fmt::format("{:+.2f}", c.paired.diff) : "—",
                    c.valid ? fmt::format("[{:+.2f}, {:+.2f}]", ci.first, ci.second) : "—",
                    mcn.empty() ? "—" : fmt::format("{}", fmt::join(mcn, "; ")),
                    mcn.empty() ? "—" : fmt::format("{} / {} ({:.3g})", c.pooled.b, c.pooled.c, c.pooled.p));
  }
  return out;
}

}  // namespace rla::tasks
