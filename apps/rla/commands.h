#pragma once
// Each subcommand lives in its own cmd_<name>.cpp: it declares its options on a CLI11
// subcommand and returns the function that runs it (returning the process exit code).
#include <CLI/CLI.hpp>

#include <functional>

namespace rla::app {

using Runner = std::function<int()>;

Runner add_list_command(CLI::App& root);
Runner add_summary_command(CLI::App& root);
Runner add_train_command(CLI::App& root);
Runner add_launch_command(CLI::App& root);
Runner add_eval_command(CLI::App& root);
Runner add_report_command(CLI::App& root);
Runner add_convert_command(CLI::App& root);
Runner add_infer_command(CLI::App& root);
Runner add_predict_command(CLI::App& root);
Runner add_exits_command(CLI::App& root);
Runner add_visualize_command(CLI::App& root);

}  // namespace rla::app
