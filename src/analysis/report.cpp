#include "rla/analysis/report.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "rla/analysis/summary.h"
#include "rla/models/registry.h"

namespace rla::analysis {
namespace fs = std::filesystem;

bool read_run(const std::string& dir, RunRecord& out) {
  std::ifstream cfg_in(fs::path(dir) / "config.json"), metrics_in(fs::path(dir) / "metrics.jsonl");
  if (!cfg_in || !metrics_in) return false;
  auto cfg = nlohmann::json::parse(cfg_in, nullptr, false);
  if (cfg.is_discarded()) return false;
  RunRecord r;
  r.dir = dir;
  r.model = cfg.value("model", "");
  r.dataset = cfg.value("dataset", "");
  r.seed = cfg.value("seed", 0);
  r.epochs_planned = cfg.value("epochs", 0);
  r.rla_channels = cfg.value("rla_channels", 0);
  r.input = r.dataset == "cifar10" || r.dataset == "cifar100" ? std::vector<int64_t>{3, 32, 32}
                                                              : std::vector<int64_t>{1, 28, 28};
  std::string line;
  double best_top1 = 0;
  while (std::getline(metrics_in, line)) {
    auto m = nlohmann::json::parse(line, nullptr, false);
    if (m.is_discarded()) continue;
    r.epochs_done = m.value("epoch", 0);
    r.final_error = 100.0 - m.value("val_top1", 0.0);
    best_top1 = std::max(best_top1, m.value("val_top1", 0.0));
    r.train_seconds += m.value("seconds", 0.0);
  }
  if (r.epochs_done == 0) return false;
  r.best_error = 100.0 - best_top1;
  out = r;
  return true;
}

std::vector<ModelRow> summarize_runs(const std::vector<RunRecord>& runs,
                                     const std::vector<std::string>& order) {
  std::vector<ModelRow> rows;
  for (const auto& name : order) {
    ModelRow row;
    row.model = name;
    std::vector<double> errors, seconds;
    std::vector<int64_t> input = {1, 28, 28};
    int64_t k = 0;
    for (const auto& r : runs) {
      if (r.model != name) continue;
      ++row.runs;
      input = r.input;
      k = r.rla_channels;
      if (r.epochs_done < r.epochs_planned) continue;
      ++row.complete_runs;
      errors.push_back(r.final_error);
      seconds.push_back(r.train_seconds);
    }
    models::ModelConfig mc;
    mc.in_channels = input[0];
    if (k > 0) mc.rla_channels = k;
    auto net = models::create_model(name, mc);
    auto s = summarize(*net, input);
    row.params = s.params;
    row.macs = s.macs;
    if (!errors.empty()) {
      double mean = 0, var = 0, sec = 0;
      for (double e : errors) mean += e;
      mean /= static_cast<double>(errors.size());
      for (double e : errors) var += (e - mean) * (e - mean);
      row.error_mean = mean;
      row.error_std = errors.size() > 1 ? std::sqrt(var / static_cast<double>(errors.size() - 1)) : 0.0;
      for (double t : seconds) sec += t;
      row.seconds_mean = sec / static_cast<double>(seconds.size());
    }
    rows.push_back(row);
  }
  return rows;
}

std::string markdown_table(const std::vector<ModelRow>& rows) {
  std::string out =
      "| model | parameters | MACs / image | test error (%) mean ± std | runs | train time / run |\n"
      "|---|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    const std::string err = r.complete_runs == 0 ? "—"
                            : r.complete_runs == 1
                                ? fmt::format("{:.2f} (one run)", r.error_mean)
                                : fmt::format("{:.2f} ± {:.2f}", r.error_mean, r.error_std);
    const std::string time = r.complete_runs == 0 ? "—" : fmt::format("{:.0f} s", r.seconds_mean);
    out +=
        fmt::format("| {} | {} ({:.3f} M) | {:.1f} M | {} | {} of {} | {} |\n", r.model,
                    with_commas(r.params), r.params / 1e6, r.macs / 1e6, err, r.complete_runs, r.runs, time);
  }
  return out;
}

}  // namespace rla::analysis
