// `rla exits`: early-exit reports for one or two trained runs with exit heads (docs/early_exit.md): error
// at every exit for all / easy / hard test samples, and dynamic inference swept over tau.
#include <fmt/format.h>

#include "commands.h"
#include "rla/tasks/exit_reports.h"

namespace rla::app {

Command add_exits_command(CLI::App& root) {
  auto cfg = std::make_shared<tasks::ExitReportConfig>();
  auto* cmd = root.add_subcommand(
      "exits",
      "Early-exit reports of runs trained with --exits, side by side: depth sweep and dynamic inference");
  auto* runs = cmd->add_option("runs", cfg->runs, "Run folders (their last.ckpt) or checkpoints, 1 to 6")
                   ->expected(1, static_cast<int>(tasks::kMaxExitRuns));
  cmd->add_option("--easy-from", cfg->easy_from,
                  "Define easy = the test images every one of these runs classifies correctly, the same "
                  "samples for every compared run (default: per run, its more confident half)");
  cmd->add_option("--taus", cfg->taus, "Confidence thresholds, comma-separated (1 = no early exit)")
      ->delimiter(',')
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  auto* out = cmd->add_option("--out,-o", cfg->out_dir, "Output folder for CSV files and PNG charts");
  auto redraw = std::make_shared<std::string>();
  cmd->add_option("--redraw", *redraw,
                  "Draw the charts of a finished report folder again from its CSV files (nothing is run)")
      ->check(CLI::ExistingDirectory)
      ->excludes(runs)
      ->excludes(out);
  cmd->add_option("--batch-size,-b", cfg->batch_size, "Batch size of dynamic inference (timed)")
      ->capture_default_str();
  cmd->add_option("--limit-test", cfg->limit_test, "Use only the first N test images (0 = all)");
  cmd->add_option("--repeats", cfg->repeats, "Timed passes per tau (the fastest is reported)")
      ->capture_default_str();
  auto quiet = std::make_shared<bool>(false);
  cmd->add_flag("--quiet,-q", *quiet, "No progress lines on stderr");
  return {cmd, [cfg, quiet, redraw]() {
            if (!redraw->empty()) {
              const auto reports = tasks::redraw_exit_charts(*redraw);
              fmt::print("drew depth_sweep.png and dynamic.png in {} again ({} series)\n", *redraw,
                         reports.size());
              return 0;
            }
            if (cfg->runs.empty() || cfg->out_dir.empty())
              throw std::invalid_argument("exits: give the runs and --out (or --redraw FOLDER)");
            cfg->show_progress = !*quiet;
            fmt::print("config {}\n", tasks::to_json(*cfg).dump());
            const auto reports = tasks::run_exit_reports(*cfg);
            if (cfg->easy_from.empty()) {
              fmt::print("{}\n\n", tasks::kEasyHardDefinition);
            } else {
              fmt::print(
                  "easy = the test images that all {} --easy-from runs classify correctly; hard = the rest "
                  "(the same samples for every run)\n\n",
                  cfg->easy_from.size());
            }
            for (const auto& r : reports) fmt::print("{}\n", tasks::format_depth_table(r));
            for (const auto& r : reports) fmt::print("{}\n", tasks::format_dynamic_table(r));
            fmt::print("wrote CSV files, depth_sweep.png and dynamic.png to {}\n", cfg->out_dir);
            return 0;
          }};
}

}  // namespace rla::app
