#pragma once
// Results tables from run folders (config.json + metrics.jsonl): one row per model, test
// error as mean ± std over the runs (seeds) found, with parameters and MACs of the model.
#include <string>
#include <vector>

namespace rla::analysis {

struct RunRecord {
  std::string dir, model, dataset;
  int64_t seed = 0, epochs_planned = 0, epochs_done = 0, rla_channels = 0;
  std::vector<int64_t> input;  ///< [C, H, W]
  double final_error = 0;      ///< 100 - test top-1 of the last epoch (%)
  double best_error = 0;
  double train_seconds = 0;  ///< sum of epoch times
};

/// Reads one run folder; returns false (and leaves `out` alone) if it has no metrics yet.
bool read_run(const std::string& dir, RunRecord& out);

struct ModelRow {
  std::string model;
  int64_t params = 0, macs = 0;
  int runs = 0, complete_runs = 0;
  double error_mean = 0, error_std = 0;  ///< over complete runs (final epoch)
  double seconds_mean = 0;
};

/// Groups complete runs by model in the given order (models with no run get runs = 0).
std::vector<ModelRow> summarize_runs(const std::vector<RunRecord>& runs,
                                     const std::vector<std::string>& model_order);

/// A Markdown table of the rows.
std::string markdown_table(const std::vector<ModelRow>& rows);

}  // namespace rla::analysis
