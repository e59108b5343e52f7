#pragma once
// Reports on early exits (docs/early_exit.md): error at every exit for all / easy / hard test
// samples (the depth sweep), dynamic inference swept over the confidence threshold tau
// (accuracy, MACs, measured time, where samples leave), their CSV files and PNG charts. Runs
// load through inference::load_model (with their exit heads and test data).
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "rla/data/loader.h"
#include "rla/data/sources.h"
#include "rla/engine/progress.h"
#include "rla/engine/trainer.h"
#include "rla/inference/early_exit.h"
#include "rla/inference/load.h"

namespace rla::tasks {

// ---- helpers ------------------------------------------------------------------------------------

/// Every batch of `loader` (one epoch, in order), held in memory so that timing measures the
/// network and not the loader.
std::vector<data::Batch> collect_batches(data::DataLoader& loader);

// ---- depth sweep --------------------------------------------------------------------------------

/// How easy and hard samples are defined by default (per model), printed with every report.
extern const char* const kEasyHardDefinition;

/// Easy samples defined once, independently of the models compared: the test samples that every
/// one of `runs` (finished trainings, e.g. every run of an experiment) classifies correctly; hard =
/// the rest. Returns bool [N] over the test set in order (limit_test: its first N images). Throws
/// std::invalid_argument when the runs' test sets differ.
torch::Tensor easy_by_agreement(const std::vector<std::string>& runs, size_t limit_test = 0);

struct DepthSweepRow {
  size_t exit = 0;         ///< 0..E-1: exit heads; E: the final classifier
  size_t depth = 0;        ///< blocks run before this classifier (1-based block number)
  std::string block_name;  ///< the block it follows, e.g. "stages.1.2"
  int64_t macs = 0;        ///< per image: stem, blocks and every exit head on the way (exit_macs)
  double error_all = 0, error_easy = 0, error_hard = 0;  ///< top-1 error (%)
};

struct DepthSweep {
  std::vector<DepthSweepRow> rows;  ///< E exits, then the final classifier
  int64_t samples = 0, easy = 0, hard = 0;
  double median_confidence = 0;  ///< the final classifier's median max-softmax
  bool shared_easy = false;      ///< easy came from easy_by_agreement, not from this model
};

/// Top-1 error of every exit and the final classifier on `batches` (eval mode, one pass each).
/// `easy` (bool [N], optional): the easy samples; undefined: kEasyHardDefinition for this model.
/// `progress` (optional) gets one step per batch.
DepthSweep depth_sweep(models::NetworkImpl& net, models::ExitHeadsImpl& heads,
                       const std::vector<data::Batch>& batches, const std::vector<int64_t>& input_chw,
                       const torch::Tensor& easy = {}, engine::Progress* progress = nullptr);

/// CSV: exit,depth,block_name,macs_per_image,error_all,error_easy,error_hard (errors in %).
void write_depth_sweep_csv(const std::string& path, const DepthSweep& sweep);
/// The rows of a file write_depth_sweep_csv wrote (samples, easy / hard counts and the median
/// confidence are not in it). Throws std::invalid_argument naming the file and the bad field.
DepthSweep read_depth_sweep_csv(const std::string& path);

// ---- dynamic inference --------------------------------------------------------------------------

struct DynamicRow {
  double tau = 1;
  double accuracy = 0;             ///< top-1 (%)
  double mean_macs = 0;            ///< per image: exit_macs where each sample left; tau >= 1 the backbone's
  double ms_per_image = 0;         ///< wall-clock of dynamic_forward over all batches / samples
  std::vector<double> exit_share;  ///< fraction leaving at each exit, then the final head (sums to 1)
};

struct DynamicSweep {
  std::vector<DynamicRow> rows;  ///< one per tau, in the given order
  int64_t samples = 0;
  int64_t batch_size = 0;  ///< of the timed batches
  int threads = 1;         ///< intra-op threads while timing
  int repeats = 1;         ///< timed passes per tau (the fastest is reported)
};

/// dynamic_forward at every tau over `batches`. Each tau is timed after one untimed warm-up batch;
/// with repeats > 1 the whole pass is timed that many times and the fastest kept (shared
/// machines make single timings noisy). Accuracy and exits come from the first pass. `progress`
/// (optional) gets one step per batch passed, warm-ups included (dynamic_sweep_steps of them).
DynamicSweep dynamic_sweep(models::NetworkImpl& net, models::ExitHeadsImpl& heads,
                           const std::vector<data::Batch>& batches, const std::vector<double>& taus,
                           const std::vector<int64_t>& input_chw, int repeats = 1,
                           engine::Progress* progress = nullptr);
/// The batches dynamic_sweep passes: per tau one warm-up and `repeats` passes over all.
size_t dynamic_sweep_steps(size_t batches, size_t taus, int repeats);

/// CSV: tau,accuracy,mean_macs_per_image,ms_per_image,batch_size,share_exit_0..,share_final.
void write_dynamic_sweep_csv(const std::string& path, const DynamicSweep& sweep);
/// The rows and batch size of a file write_dynamic_sweep_csv wrote (threads and repeats are in
/// the report's config.json). Throws std::invalid_argument naming the file and the bad field.
DynamicSweep read_dynamic_sweep_csv(const std::string& path);

// ---- reports for one or two models ----------------------------------------------------------------

struct ModelExitReport {
  std::string label;  ///< the model name (with the run folder if two runs share a name)
  DepthSweep depth;
  DynamicSweep dynamic;
};

/// Six panels, one series per model: error (%) on all / easy / hard samples (rows) vs MACs per
/// image up to the exit (M) and vs the share of the network's blocks passed (columns).
void save_depth_chart(const std::string& path, const std::vector<ModelExitReport>& reports);
/// Two panels: accuracy (%) vs mean MACs (M) and accuracy vs measured ms per image, every model.
void save_dynamic_chart(const std::string& path, const std::vector<ModelExitReport>& reports);

/// Plain-text tables for the console.
std::string format_depth_table(const ModelExitReport& report);
std::string format_dynamic_table(const ModelExitReport& report);

struct ExitReportConfig {
  std::vector<std::string> runs;  ///< run folders or checkpoints (up to kMaxExitRuns)
  /// Runs whose agreement defines easy / hard (easy_by_agreement); empty: per model.
  std::vector<std::string> easy_from;
  std::vector<double> taus = {0.5, 0.8, 0.9, 0.95, 0.99, 1.0};
  std::string out_dir;
  int64_t batch_size = 256;
  size_t limit_test = 0;
  int repeats = 3;             ///< timed passes per tau; the fastest is reported
  bool show_progress = false;  ///< a progress line per run on stderr (rate, ETA)
};
nlohmann::json to_json(const ExitReportConfig& c);

constexpr size_t kMaxExitRuns = 6;

/// `rla exits`: for each run, the depth sweep and the dynamic sweep; writes
/// <out>/<label>_depth.csv, <label>_dynamic.csv, depth_sweep.png, dynamic.png and config.json.
std::vector<ModelExitReport> run_exit_reports(const ExitReportConfig& config);

/// Draws depth_sweep.png and dynamic.png of a folder that run_exit_reports wrote again, from its
/// config.json and CSV files (no test data is read or run; each run's model and heads are loaded
/// for its series' name): charts of earlier reports with the current plotting code.
std::vector<ModelExitReport> redraw_exit_charts(const std::string& report_dir);

}  // namespace rla::tasks
