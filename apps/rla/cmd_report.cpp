// `rla report`: a results table (Markdown) from run folders, grouped by model.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "rla/analysis/report.h"

namespace rla::app {

Runner add_report_command(CLI::App& root) {
  auto dirs = std::make_shared<std::vector<std::string>>();
  auto order = std::make_shared<std::vector<std::string>>();
  auto* cmd =
      root.add_subcommand("report", "Markdown table of test error (mean ± std over seeds) from run folders");
  cmd->add_option("runs", *dirs, "Run folders, or folders holding run folders")->required();
  cmd->add_option("--models", *order, "Row order (default: order of first appearance)")->delimiter(',');
  return [dirs, order]() {
    std::vector<analysis::RunRecord> runs;
    for (const auto& d : *dirs) {
      analysis::RunRecord r;
      if (analysis::read_run(d, r)) {
        runs.push_back(r);
        continue;
      }
      if (!std::filesystem::is_directory(d)) throw std::invalid_argument(d + ": not a run folder");
      std::vector<std::string> children;
      for (const auto& e : std::filesystem::directory_iterator(d))
        if (e.is_directory()) children.push_back(e.path().string());
      std::sort(children.begin(), children.end());
      for (const auto& c : children)
        if (analysis::read_run(c, r)) runs.push_back(r);
    }
    std::vector<std::string> models = *order;
    for (const auto& r : runs)
      if (std::find(models.begin(), models.end(), r.model) == models.end()) models.push_back(r.model);
    std::cout << analysis::markdown_table(analysis::summarize_runs(runs, models));
    return 0;
  };
}

}  // namespace rla::app
