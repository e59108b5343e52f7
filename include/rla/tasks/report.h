#pragma once
// Results tables from run folders (engine/run.h): one row per model (or per model and
// configuration), validation and test error as mean ± std over the runs (seeds) found, with the
// model's parameters and MACs and its training speed; and differences between two rows with a
// 95 % interval over seeds.
#include <optional>
#include <string>
#include <vector>

#include "rla/engine/run.h"

namespace rla::tasks {

struct RunRecord {
  std::string dir;
  engine::TrainConfig config;
  std::vector<engine::EpochMetrics> metrics;
  /// The finished run's errors (%): from result.json, or for runs without a validation split
  /// written before result.json existed, the held-out (test) error of the last planned epoch.
  std::optional<double> val_error, test_error;
  bool finished() const { return test_error.has_value(); }
};

/// Reads one run folder; nullopt when it has no config.json.
std::optional<RunRecord> read_run(const std::string& dir);
/// `path` itself when it is a run folder, else every run folder below it (sorted by path).
std::vector<RunRecord> find_runs(const std::string& path);

/// mean, sample std and count of a set of values.
struct Stat {
  std::vector<double> values;
  double mean() const;
  double std() const;  ///< 0 for fewer than two values
};

struct ModelRow {
  std::string label;  ///< the model name, plus its switches when rows are split by configuration
  std::string model;
  int64_t params = 0, macs = 0;  ///< macs < 0: unknown (no input shape recorded)
  int runs = 0, finished = 0;
  Stat val_error, test_error;  ///< over finished runs (%)
  Stat img_per_s;              ///< per finished run: the median of its epochs' training img/s
};

/// Groups runs by model in the given order (models not in `order` follow in order of first
/// appearance). by_config: one row per model and resolved model configuration (k, aggregation,
/// init, state input), labelled with the switches.
std::vector<ModelRow> summarize_runs(const std::vector<RunRecord>& runs,
                                     const std::vector<std::string>& order, bool by_config = false);

/// Two-sided 95 % quantile of Student's t with `df` degrees of freedom (df >= 1, real).
double t_quantile_975(double df);

/// a − b in mean test error (points), with Welch's 95 % interval over the seeds of each row.
struct Comparison {
  std::string a, b;
  double diff = 0, low = 0, high = 0;
  size_t na = 0, nb = 0;
  bool valid = false;  ///< at least two finished runs on each side
  /// "A lower", "B lower" or "within noise" (the interval contains 0).
  std::string verdict() const;
};
Comparison compare_test_error(const ModelRow& a, const ModelRow& b);

/// Markdown tables of the rows and of comparisons.
std::string markdown_table(const std::vector<ModelRow>& rows);
std::string markdown_comparisons(const std::vector<Comparison>& comparisons);

}  // namespace rla::tasks
