// `rla report`: Markdown tables from run folders: validation and test error (mean ± std over
// seeds, every seed's value) per model, and a family of comparisons between models with exact
// Welch intervals, Holm's correction and TOST for equivalence claims (docs/results_cifar.md).
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>

#include "commands.h"
#include "options.h"
#include "rla/tasks/report.h"

namespace rla::app {
namespace {
struct ReportConfig {
  std::vector<std::string> dirs, order, compare;
  bool by_config = false;
  bool validation_only = false;
  bool paired = false;
  tasks::FamilyOptions family;
};

tasks::ComparisonSpec parse_spec(const std::string& text) {
  const auto at = text.find_first_of(":~");
  if (at == std::string::npos || at == 0 || at + 1 == text.size())
    throw std::invalid_argument(
        fmt::format("--compare: '{}' is not A:B (superiority) or A~B (equivalence)", text));
  return {text.substr(0, at), text.substr(at + 1),
          text[at] == '~' ? tasks::Hypothesis::kEquivalence : tasks::Hypothesis::kSuperiority};
}
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
                  "The family of comparisons, Holm-corrected together: A:B tests A - B = 0 (superiority, "
                  "Welch), A~B tests |A - B| < margin (equivalence, two one-sided tests)")
      ->delimiter(',');
  cmd->add_option("--alpha", cfg->family.alpha, "Family-wise error rate of the comparisons")
      ->capture_default_str()
      ->check(CLI::Range(1e-6, 0.5));
  cmd->add_option("--margin", cfg->family.margin, "Equivalence margin (points of error)")
      ->capture_default_str()
      ->check(kPositive);
  cmd->add_flag("--validation-only", cfg->validation_only,
                "Leave the test error out: the table and the comparisons read validation error (interim "
                "reports, before a comparison's runs are all in)");
  cmd->add_flag("--paired", cfg->paired,
                "Also the seed-paired view of each comparison: paired t over common seeds and McNemar on the "
                "test images (needs test_predictions.txt and the runs' dataset)");
  return {cmd, [cfg]() {
            std::vector<tasks::RunRecord> runs;
            std::set<std::string> seen;  // a folder named twice (or inside another named one) counts once
            for (const auto& d : cfg->dirs)
              for (auto& r : tasks::find_runs(d))
                if (seen.insert(std::filesystem::weakly_canonical(r.dir).string()).second)
                  runs.push_back(std::move(r));
            if (runs.empty()) throw std::invalid_argument("no run folders (with config.json) found");
            const auto rows = tasks::summarize_runs(runs, cfg->order, cfg->by_config);
            // Printed whole at the end: an error found in a comparison leaves only its message.
            std::ostringstream out;
            out << tasks::markdown_table(rows, !cfg->validation_only);
            if (!cfg->compare.empty()) {
              std::vector<tasks::ComparisonSpec> specs;
              for (const auto& text : cfg->compare) specs.push_back(parse_spec(text));
              auto family = cfg->family;
              if (cfg->validation_only) family.metric = tasks::Metric::kValidation;
              out << "\n" << tasks::markdown_comparisons(tasks::compare_family(rows, specs, family), family);
              if (cfg->paired && !cfg->validation_only) {
                std::vector<int64_t> labels;
                for (const auto& r : runs)
                  if (r.finished() && !tasks::read_test_predictions(r).empty()) {
                    labels = tasks::test_labels(r);
                    break;
                  }
                std::vector<tasks::PairedComparison> paired;
                for (const auto& spec : specs)
                  paired.push_back(tasks::compare_paired(runs, rows, spec, labels));
                out << "\n" << tasks::markdown_paired(paired);
              }
            }
            std::cout << out.str();
            return 0;
          }};
}

}  // namespace rla::app
