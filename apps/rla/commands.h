#pragma once
// Each subcommand lives in its own cmd_<name>.cpp: it declares its options on a CLI11
// subcommand and returns it with the function that runs it (returning the process exit code).
#include <CLI/CLI.hpp>

#include <functional>

namespace rla::app {

using Runner = std::function<int()>;

/// A declared subcommand and what runs it; main() dispatches by the subcommand's name.
struct Command {
  CLI::App* app;
  Runner run;
};

Command add_list_command(CLI::App& root);
Command add_summary_command(CLI::App& root);
Command add_train_command(CLI::App& root);
Command add_launch_command(CLI::App& root);
Command add_eval_command(CLI::App& root);
Command add_report_command(CLI::App& root);
Command add_convert_command(CLI::App& root);
Command add_infer_command(CLI::App& root);
Command add_predict_command(CLI::App& root);
Command add_exits_command(CLI::App& root);
Command add_visualize_command(CLI::App& root);
Command add_export_command(CLI::App& root);
Command add_quantize_command(CLI::App& root);
Command add_data_command(CLI::App& root);

}  // namespace rla::app
