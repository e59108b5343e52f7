#pragma once
// Results tables from run folders (engine/run.h): one row per model (or per model and
// configuration), validation and test error as mean ± std over the runs (seeds) found, with the
// model's parameters and MACs and its training speed; and comparisons between rows as one
// pre-registered family: Welch intervals with exact t quantiles, Holm's correction, TOST for
// equivalence claims, and the seed-paired view with McNemar on the test images
// (docs/results_cifar.md, "Tests").
#include <optional>
#include <string>
#include <vector>

#include "rla/engine/run.h"
#include "rla/util/statistics.h"

namespace rla::tasks {

struct RunRecord {
  std::string dir;
  engine::TrainConfig config;
  std::vector<engine::EpochMetrics> metrics;
  /// The finished run's errors (%): from result.json, or for runs without a validation split
  /// written before result.json existed, the held-out (test) error of the last planned epoch.
  std::optional<double> val_error, test_error;
  bool finished() const { return test_error.has_value(); }
  uint64_t seed() const { return config.run.seed; }
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
  Stat val_error, test_error;       ///< over finished runs (%)
  std::vector<uint64_t> seeds;      ///< of the finished runs, in the order of test_error's values
  std::vector<uint64_t> val_seeds;  ///< of those with a validation error, in the order of val_error's
  Stat img_per_s;                   ///< per finished run: the median of its epochs' training img/s
};

/// Groups runs by model in the given order (models not in `order` follow in order of first
/// appearance). by_config: one row per model and resolved model configuration (k, aggregation,
/// init, state input), labelled with the switches.
std::vector<ModelRow> summarize_runs(const std::vector<RunRecord>& runs,
                                     const std::vector<std::string>& order, bool by_config = false);

/// Which error a comparison reads.
enum class Metric { kTest, kValidation };
/// What a comparison claims (docs/results_cifar.md, "Tests"): A differs from B (superiority,
/// two-sided Welch test of a zero difference) or A is within ±margin of B (equivalence, TOST).
enum class Hypothesis { kSuperiority, kEquivalence };

struct ComparisonSpec {
  std::string a, b;
  Hypothesis type = Hypothesis::kSuperiority;
};

/// The family's settings: family-wise alpha (Holm) and the equivalence margin (points).
struct FamilyOptions {
  double alpha = 0.05;
  double margin = 0.5;
  Metric metric = Metric::kTest;
};

/// One comparison of a Holm-corrected family: a − b in mean error (points) over seeds.
struct Comparison {
  ComparisonSpec spec;
  size_t na = 0, nb = 0;
  bool valid = false;                 ///< at least two finished runs on each side
  util::MeanDifference welch;         ///< diff, se, Welch df
  double p = 1;                       ///< raw p: two-sided (superiority) or TOST (equivalence)
  double p_holm = 1;                  ///< Holm-adjusted over the family's valid comparisons
  double level = 0;                   ///< the alpha Holm tests this comparison at
  std::pair<double, double> ci95;     ///< two-sided 95 % Welch interval
  std::pair<double, double> ci_holm;  ///< at the Holm level: 1 - level (superiority), 1 - 2 level (TOST)
  std::pair<double, double> ci_bonferroni;  ///< two-sided 1 - alpha / m: decides "not equivalent"
  double bonferroni = 0;                    ///< its confidence, 1 - alpha / m (m valid comparisons)
  /// "holds (A lower)", "fails (A higher)", "holds (within ±m)", "fails (not within ±m, A higher)",
  /// "inconclusive" or "too few runs".
  std::string verdict;
};
/// Compares the rows named by each spec on `options.metric`, as one family: raw p-values,
/// Holm-adjusted p-values and levels, intervals and verdicts (docs/results_cifar.md). Throws
/// std::invalid_argument naming a spec whose row does not exist or has two finished runs of one
/// seed (compare_paired too).
std::vector<Comparison> compare_family(const std::vector<ModelRow>& rows,
                                       const std::vector<ComparisonSpec>& specs,
                                       const FamilyOptions& options);

/// The secondary, seed-paired view of A vs B: the runs with the same seed on both sides.
struct PairedComparison {
  ComparisonSpec spec;
  std::vector<uint64_t> seeds;      ///< seeds both models finished
  std::vector<double> differences;  ///< error A − error B per seed (test, points)
  bool valid = false;               ///< at least two seeds
  util::MeanDifference paired;      ///< paired t over `differences`
  /// McNemar on the test images, per seed and pooled: b = only A right, c = only B right.
  struct Counts {
    int64_t b = 0, c = 0;
    double p = 1;
  };
  std::vector<Counts> per_seed;  ///< empty when a run has no test_predictions.txt
  Counts pooled;
};
/// Pairs the finished runs of rows spec.a and spec.b by seed. McNemar counts need every paired
/// run's per-image predictions and the test labels: `labels` (empty: McNemar is left out).
PairedComparison compare_paired(const std::vector<RunRecord>& runs, const std::vector<ModelRow>& rows,
                                const ComparisonSpec& spec, const std::vector<int64_t>& labels);
/// The test labels of a run's dataset, in order (opens its data as configured).
std::vector<int64_t> test_labels(const RunRecord& run);
/// A run's test_predictions.txt; empty when missing.
std::vector<int64_t> read_test_predictions(const RunRecord& run);

/// Markdown tables of the rows (`with_test` false: the test column is left out — interim tables
/// before a comparison is complete), of a family of comparisons and of paired comparisons. Rows
/// also list every seed's value.
std::string markdown_table(const std::vector<ModelRow>& rows, bool with_test = true);
std::string markdown_comparisons(const std::vector<Comparison>& comparisons, const FamilyOptions& options);
std::string markdown_paired(const std::vector<PairedComparison>& comparisons);

}  // namespace rla::tasks
