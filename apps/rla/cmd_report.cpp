// `rla report`: Markdown tables from run folders: validation and test error (mean ± std over
// seeds) per model, and differences between models with a 95 % interval.
#include <fmt/format.h>

#include <iostream>

#include "commands.h"
#include "rla/tasks/report.h"

namespace rla::app {
namespace {
struct ReportConfig {
  std::vector<std::string> dirs, order, compare;
  bool by_config = false;
};
}  // namespace

Command add_report_command(CLI::App& root) {
  auto cfg = std::make_shared<ReportConfig>();
  auto* cmd = root.add_subcommand(
      "report", "Markdown tables of validation / test error (mean ± std over seeds) from run folders");
  cmd->add_option("runs", cfg->dirs, "Run folders, or folders holding run folders")->required();
  cmd->add_option("--models", cfg->order, "Row order (default: order of first appearance)")->delimiter(',');
  cmd->add_flag("--by-config", cfg->by_config,
                "One row per model and configuration (k, aggregation, init, state input)");
  cmd->add_option("--compare", cfg->compare,
                  "Pairs A:B of row labels: test error A - B with a 95 % interval over seeds")
      ->delimiter(',');
  return {cmd, [cfg]() {
            std::vector<tasks::RunRecord> runs;
            for (const auto& d : cfg->dirs) {
              auto found = tasks::find_runs(d);
              runs.insert(runs.end(), found.begin(), found.end());
            }
            if (runs.empty()) throw std::invalid_argument("no run folders (with config.json) found");
            const auto rows = tasks::summarize_runs(runs, cfg->order, cfg->by_config);
            std::cout << tasks::markdown_table(rows);
            if (cfg->compare.empty()) return 0;
            std::vector<tasks::Comparison> comparisons;
            auto row = [&rows](const std::string& label) {
              for (const auto& r : rows)
                if (r.label == label) return r;
              throw std::invalid_argument(fmt::format("--compare: no row '{}'", label));
            };
            for (const auto& pair : cfg->compare) {
              const auto colon = pair.find(':');
              if (colon == std::string::npos)
                throw std::invalid_argument(fmt::format("--compare: '{}' is not A:B", pair));
              comparisons.push_back(
                  tasks::compare_test_error(row(pair.substr(0, colon)), row(pair.substr(colon + 1))));
            }
            std::cout << "\n" << tasks::markdown_comparisons(comparisons);
            return 0;
          }};
}

}  // namespace rla::app
