#include "rla/tasks/exit_reports.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>

#include "rla/engine/checkpoint.h"
#include "rla/models/registry.h"
#include "rla/models/summary.h"
#include "rla/plot/plot.h"
#include "rla/util/field_error.h"

namespace rla::tasks {
namespace fs = std::filesystem;

const char* const kEasyHardDefinition =
    "easy = the test samples on which the final classifier's max-softmax confidence is >= its median "
    "(the most confident half); hard = the rest";

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw std::runtime_error(path + ": cannot write");
  out << text;
  if (!out.flush()) throw std::runtime_error(path + ": write failed");
}

double error_of(const torch::Tensor& correct, const torch::Tensor& mask) {
  const auto n = mask.sum().item<int64_t>();
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  return 100.0 *
         (1.0 - correct.masked_select(mask).to(torch::kDouble).sum().item<double>() / static_cast<double>(n));
}

std::string file_label(const std::string& label) {
  std::string out;
  for (char c : label) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') ? c : '_';
  return out;
}

}  // namespace

namespace {

// A run with its exit heads and its test data, eager.
inference::ModelBundle load_with_exits(const std::string& run, size_t limit_test) {
  inference::LoadOptions o;
  o.execution = inference::Execution::kEager;
  o.with_exits = true;
  o.with_data = true;
  o.limit_test = limit_test;
  return inference::load_model(run, o);
}

}  // namespace

std::vector<data::Batch> collect_batches(data::DataLoader& loader) {
  std::vector<data::Batch> out;
  loader.start_epoch(0);
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

namespace {

// Which test images `run` classifies correctly (bool [N]): from its test_predictions.txt when it
// has one (no weights needed), else by running its final weights over its test set.
torch::Tensor correct_on_test(const std::string& run, size_t limit_test) {
  if (fs::is_directory(run) && fs::exists(engine::test_predictions_path(run))) {
    auto d = engine::read_train_config(run).data;
    d.augment = false;
    d.limit_test = limit_test;
    const auto test = data::open_data(d).test;
    std::ifstream in(engine::test_predictions_path(run));
    std::vector<int64_t> predicted;
    for (int64_t p; in >> p;) predicted.push_back(p);
    if (predicted.size() < test->size())
      throw std::invalid_argument(fmt::format("{}: {} predictions for {} test images",
                                              engine::test_predictions_path(run), predicted.size(),
                                              test->size()));
    auto correct = torch::empty({static_cast<int64_t>(test->size())}, torch::kBool);
    auto* c = correct.data_ptr<bool>();
    for (size_t i = 0; i < test->size(); ++i) c[i] = predicted[i] == test->label(i);
    return correct;
  }
  inference::LoadOptions o;
  o.execution = inference::Execution::kEager;
  o.with_data = true;
  o.limit_test = limit_test;
  const auto m = inference::load_model(run, o);
  data::LoaderOptions lo;
  lo.batch_size = 256;
  lo.shuffle = false;
  lo.workers = 0;
  data::DataLoader loader(m.data->test, m.data->eval_transforms, lo);
  std::vector<torch::Tensor> correct;
  loader.start_epoch(0);
  while (auto b = loader.next()) correct.push_back(m.forward(b->images).argmax(1) == b->labels);
  return torch::cat(correct);
}

}  // namespace

torch::Tensor easy_by_agreement(const std::vector<std::string>& runs, size_t limit_test) {
  if (runs.empty()) throw std::invalid_argument("the easy/hard split needs at least one run");
  torch::Tensor easy;
  for (const auto& run : runs) {
    const auto c = correct_on_test(run, limit_test);
    if (easy.defined() && easy.numel() != c.numel())
      throw std::invalid_argument(
          fmt::format("easy/hard split: {} has {} test images, the others {}", run, c.numel(), easy.numel()));
    easy = easy.defined() ? easy.logical_and(c) : c;
  }
  return easy;
}

DepthSweep depth_sweep(models::NetworkImpl& net, models::ExitHeadsImpl& heads,
                       const std::vector<data::Batch>& batches, const std::vector<int64_t>& input_chw,
                       const torch::Tensor& shared_easy, engine::Progress* progress) {
  if (batches.empty()) throw std::invalid_argument("depth sweep: no test samples");
  torch::NoGradGuard no_grad;
  net.eval();
  heads.eval();
  const size_t n_cls = heads.size() + 1;
  std::vector<std::vector<torch::Tensor>> correct(n_cls);
  std::vector<torch::Tensor> confidence;
  for (const auto& b : batches) {
    const auto all = models::forward_all_exits(net, heads, b.images);
    for (size_t j = 0; j < n_cls; ++j) correct[j].push_back(all[j].argmax(1) == b.labels);
    confidence.push_back(std::get<0>(torch::softmax(all.back(), 1).max(1)));
    if (progress) progress->step(static_cast<size_t>(b.images.size(0)), "depth sweep");
  }
  const auto conf = torch::cat(confidence);
  DepthSweep s;
  s.samples = conf.numel();
  s.median_confidence = conf.median().item<double>();
  if (shared_easy.defined() && shared_easy.numel() != conf.numel())
    throw std::invalid_argument(fmt::format("the easy/hard split covers {} images, the test set {}",
                                            shared_easy.numel(), conf.numel()));
  s.shared_easy = shared_easy.defined();
  const auto easy = s.shared_easy ? shared_easy.to(torch::kBool) : conf >= s.median_confidence;
  const auto hard = easy.logical_not(), all = torch::ones_like(easy);
  s.easy = easy.sum().item<int64_t>();
  s.hard = s.samples - s.easy;
  const auto macs = inference::exit_macs(net, heads, input_chw);
  const auto& blocks = net.blocks();
  for (size_t j = 0; j < n_cls; ++j) {
    DepthSweepRow r;
    r.exit = j;
    const size_t block = j < heads.size() ? heads.after_block()[j] : blocks.size() - 1;
    r.depth = block + 1;
    r.block_name = blocks[block].name;
    r.macs = macs[j];
    const auto c = torch::cat(correct[j]);
    r.error_all = error_of(c, all);
    r.error_easy = error_of(c, easy);
    r.error_hard = error_of(c, hard);
    s.rows.push_back(r);
  }
  return s;
}

void write_depth_sweep_csv(const std::string& path, const DepthSweep& sweep) {
  std::string text = "exit,depth,block_name,macs_per_image,error_all,error_easy,error_hard\n";
  for (const auto& r : sweep.rows) {
    const bool final_head = &r == &sweep.rows.back();
    text += fmt::format("{},{},{}{},{},{:.4f},{:.4f},{:.4f}\n",
                        final_head ? std::string("final") : std::to_string(r.exit), r.depth, r.block_name,
                        final_head ? " (final head)" : "", r.macs, r.error_all, r.error_easy, r.error_hard);
  }
  write_text(path, text);
}

DynamicSweep dynamic_sweep(models::NetworkImpl& net, models::ExitHeadsImpl& heads,
                           const std::vector<data::Batch>& batches, const std::vector<double>& taus,
                           const std::vector<int64_t>& input_chw, int repeats, engine::Progress* progress) {
  if (batches.empty()) throw std::invalid_argument("dynamic sweep: no test samples");
  if (repeats < 1)
    throw std::invalid_argument(fmt::format("dynamic sweep: repeats must be >= 1, got {}", repeats));
  if (taus.empty()) throw util::FieldError("taus", "dynamic sweep: no thresholds (taus)");
  net.eval();
  heads.eval();
  const auto macs = inference::exit_macs(net, heads, input_chw);
  // tau >= 1 runs the network alone (no head is evaluated): its cost is the backbone's (the MACs
  // `rla summary` counts), not the final exit's, which counts every head on the way.
  const auto plain = static_cast<double>(models::summarize(net, input_chw).macs);
  DynamicSweep s;
  s.batch_size = batches.front().images.size(0);
  s.threads = torch::get_num_threads();
  s.repeats = repeats;
  for (const auto& b : batches) s.samples += b.images.size(0);
  for (double tau : taus) {
    DynamicRow row;
    row.tau = tau;
    row.exit_share.assign(macs.size(), 0.0);
    inference::dynamic_forward(net, heads, batches.front().images, tau);  // warm-up (allocator, caches)
    const auto status = fmt::format("dynamic, tau {}", tau);
    if (progress) progress->step(static_cast<size_t>(batches.front().images.size(0)), status);
    int64_t correct = 0;
    double total_macs = 0;
    std::vector<inference::DynamicResult> results;
    results.reserve(batches.size());
    double best_ms = std::numeric_limits<double>::infinity();
    for (int rep = 0; rep < repeats; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      for (const auto& b : batches) {
        auto r = inference::dynamic_forward(net, heads, b.images, tau);
        if (rep == 0) results.push_back(std::move(r));
        if (progress) progress->step(static_cast<size_t>(b.images.size(0)), status);
      }
      const auto t1 = std::chrono::steady_clock::now();
      best_ms = std::min(best_ms, std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    for (size_t i = 0; i < batches.size(); ++i) {
      correct += (results[i].logits.argmax(1) == batches[i].labels).sum().item<int64_t>();
      for (auto e : results[i].exit_index) {
        row.exit_share[static_cast<size_t>(e)] += 1.0;
        total_macs += tau >= 1.0 ? plain : static_cast<double>(macs[static_cast<size_t>(e)]);
      }
    }
    const auto n = static_cast<double>(s.samples);
    for (auto& share : row.exit_share) share /= n;
    row.accuracy = 100.0 * static_cast<double>(correct) / n;
    row.mean_macs = total_macs / n;
    row.ms_per_image = best_ms / n;
    s.rows.push_back(row);
  }
  return s;
}

size_t dynamic_sweep_steps(size_t batches, size_t taus, int repeats) {
  return taus * (1 + static_cast<size_t>(std::max(repeats, 0)) * batches);
}

void write_dynamic_sweep_csv(const std::string& path, const DynamicSweep& sweep) {
  std::string text = "tau,accuracy,mean_macs_per_image,ms_per_image,batch_size";
  const size_t exits = sweep.rows.empty() ? 0 : sweep.rows.front().exit_share.size();
  for (size_t j = 0; j + 1 < exits; ++j) text += fmt::format(",share_exit_{}", j);
  text += ",share_final\n";
  for (const auto& r : sweep.rows) {
    text += fmt::format("{},{:.4f},{:.0f},{:.5f},{}", r.tau, r.accuracy, r.mean_macs, r.ms_per_image,
                        sweep.batch_size);
    for (double share : r.exit_share) text += fmt::format(",{:.5f}", share);
    text += "\n";
  }
  write_text(path, text);
}

// Six panels: error on all, easy and hard samples (rows), against the MACs spent up to each exit and
// against the share of the network's blocks passed (columns), one series per run. Depth is a share
// so that nets of different block counts (e.g. 9 bottleneck vs 15 basic blocks) share an axis.
void save_depth_chart(const std::string& path, const std::vector<ModelExitReport>& reports) {
  const bool shared = !reports.empty() && reports.front().depth.shared_easy;
  const std::string subset_note[] = {"all test images",
                                     shared ? "easy (right in every reference run)" : "easy (confident half)",
                                     shared ? "hard (the rest)" : "hard (less confident half)"};
  std::vector<plot::Chart> panels;
  for (int subset = 0; subset < 3; ++subset) {
    plot::Chart by_macs{"Exit error, " + subset_note[subset],
                        "MACs per image up to the exit (M)",
                        "top-1 error (%)",
                        {},
                        false};
    plot::Chart by_depth{"Exit error, " + subset_note[subset],
                         "share of the network's blocks passed",
                         "top-1 error (%)",
                         {},
                         false};
    for (const auto& rep : reports) {
      plot::Series m{rep.label, {}, {}}, d{rep.label, {}, {}};
      const auto blocks = static_cast<double>(rep.depth.rows.back().depth);
      for (const auto& r : rep.depth.rows) {
        const double err = subset == 0 ? r.error_all : subset == 1 ? r.error_easy : r.error_hard;
        m.x.push_back(static_cast<double>(r.macs) / 1e6), m.y.push_back(err);
        d.x.push_back(static_cast<double>(r.depth) / blocks), d.y.push_back(err);
      }
      by_macs.series.push_back(std::move(m));
      by_depth.series.push_back(std::move(d));
    }
    panels.push_back(std::move(by_macs));
    panels.push_back(std::move(by_depth));
  }
  plot::save_charts_png(path, panels, 2, 820, 600);
}

void save_dynamic_chart(const std::string& path, const std::vector<ModelExitReport>& reports) {
  if (reports.empty()) throw std::invalid_argument("dynamic chart: no reports");
  const auto& d0 = reports.front().dynamic;
  plot::Chart macs{"Early exit: accuracy vs MACs",
                   "mean MACs per image (M), one point per τ",
                   "top-1 accuracy (%)",
                   {},
                   false};
  // The x label must fit one panel's width: the repeat count goes to the title.
  plot::Chart time{fmt::format("Early exit: accuracy vs time (best of {})", d0.repeats),
                   fmt::format("ms per image, batch {}, {} thread{}", d0.batch_size, d0.threads,
                               d0.threads == 1 ? "" : "s"),
                   "top-1 accuracy (%)",
                   {},
                   false};
  for (const auto& rep : reports) {
    plot::Series a{rep.label, {}, {}}, t{rep.label, {}, {}};
    for (const auto& r : rep.dynamic.rows) {
      a.x.push_back(r.mean_macs / 1e6), a.y.push_back(r.accuracy);
      t.x.push_back(r.ms_per_image), t.y.push_back(r.accuracy);
    }
    macs.series.push_back(a);
    time.series.push_back(t);
  }
  plot::save_charts_png(path, {macs, time}, 2, 820, 560);
}

std::string format_depth_table(const ModelExitReport& rep) {
  const auto& s = rep.depth;
  std::string out = fmt::format(
      "{}: error at every exit ({} test images; {} easy, {} hard; median final "
      "confidence {:.4f})\n",
      rep.label, s.samples, s.easy, s.hard, s.median_confidence);
  out += fmt::format("  {:>5} {:>5} {:<14} {:>9} {:>9} {:>9} {:>9}\n", "exit", "depth", "after block",
                     "MMACs", "err all", "err easy", "err hard");
  for (const auto& r : s.rows) {
    const bool fin = &r == &s.rows.back();
    out += fmt::format("  {:>5} {:>5} {:<14} {:>9.2f} {:>8.2f}% {:>8.2f}% {:>8.2f}%\n",
                       fin ? std::string("final") : std::to_string(r.exit), r.depth, r.block_name,
                       static_cast<double>(r.macs) / 1e6, r.error_all, r.error_easy, r.error_hard);
  }
  return out;
}

std::string format_dynamic_table(const ModelExitReport& rep) {
  const auto& s = rep.dynamic;
  std::string out =
      fmt::format("{}: dynamic inference ({} images, batch {}, {} thread{}, time: best of {})\n", rep.label,
                  s.samples, s.batch_size, s.threads, s.threads == 1 ? "" : "s", s.repeats);
  out += fmt::format("  {:>6} {:>9} {:>9} {:>9}  share leaving at exit 0..E-1, final\n", "tau", "top-1",
                     "MMACs", "ms/img");
  for (const auto& r : s.rows) {
    out += fmt::format("  {:>6.3f} {:>8.2f}% {:>9.2f} {:>9.4f} ", r.tau, r.accuracy, r.mean_macs / 1e6,
                       r.ms_per_image);
    for (double share : r.exit_share) out += fmt::format(" {:.2f}", share);
    out += "\n";
  }
  return out;
}

nlohmann::json to_json(const ExitReportConfig& c) {
  return {
      {"runs", c.runs},
      {"taus", c.taus},
      {"out_dir", c.out_dir},
      {"batch_size", c.batch_size},
      {"limit_test", c.limit_test},
      {"repeats", c.repeats},
      {"threads", torch::get_num_threads()},
      {"easy_from", c.easy_from},
      {"easy_hard", c.easy_from.empty() ? std::string(kEasyHardDefinition)
                                        : "easy = the test images every easy_from run classifies correctly"}};
}

namespace {

// The label a run's series gets in tables and charts, and the stem of its CSV files. Runs of one
// model differ by what their exits read, else by their folder (`earlier`: the reports before it).
std::pair<std::string, std::string> series_names(const inference::ModelBundle& m, const std::string& run,
                                                 const std::vector<ModelExitReport>& earlier) {
  const std::string input = models::to_string(m.run->exits.input);
  // What the heads really read: "both" on a net without a state is x alone.
  const auto in = m.heads->input();
  const bool reads_h = in != models::ExitInput::kMain && m.net->state_channels() > 0;
  const std::string reads = in == models::ExitInput::kState ? "h" : reads_h ? "x, h" : "x";
  std::string label = m.model + " (exits read " + reads + ")";
  std::string stem = m.model + "-" + input;
  for (const auto& other : earlier) {
    if (other.label != label) continue;
    label += " (" + run + ")";
    stem += "-" + std::to_string(earlier.size());
  }
  return {label, file_label(stem)};
}

// The data rows of a CSV file that write_*_csv wrote (header skipped), split at commas.
std::vector<std::vector<std::string>> read_csv_rows(const std::string& path, size_t min_fields) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument(path + ": cannot read (not a folder that rla exits wrote?)");
  std::vector<std::vector<std::string>> rows;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> fields;
    size_t start = 0;
    for (size_t comma; (comma = line.find(',', start)) != std::string::npos; start = comma + 1)
      fields.push_back(line.substr(start, comma - start));
    fields.push_back(line.substr(start));
    if (fields.size() < min_fields)
      throw std::invalid_argument(fmt::format("{}: line {} has {} fields, expected {}", path, rows.size() + 2,
                                              fields.size(), min_fields));
    rows.push_back(std::move(fields));
  }
  if (rows.empty()) throw std::invalid_argument(path + ": no rows");
  return rows;
}

double number_in(const std::string& path, const std::string& field) {
  try {
    size_t used = 0;
    const double v = std::stod(field, &used);
    if (used == field.size()) return v;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(fmt::format("{}: '{}' is not a number", path, field));
}

}  // namespace

DepthSweep read_depth_sweep_csv(const std::string& path) {
  DepthSweep sweep;
  const auto rows = read_csv_rows(path, 7);
  for (const auto& f : rows) {
    DepthSweepRow r;
    r.exit = f[0] == "final" ? sweep.rows.size() : static_cast<size_t>(number_in(path, f[0]));
    r.depth = static_cast<size_t>(number_in(path, f[1]));
    r.block_name = f[2];
    const std::string final_mark = " (final head)";
    if (r.block_name.size() > final_mark.size() &&
        r.block_name.compare(r.block_name.size() - final_mark.size(), final_mark.size(), final_mark) == 0)
      r.block_name.resize(r.block_name.size() - final_mark.size());
    r.macs = static_cast<int64_t>(number_in(path, f[3]));
    r.error_all = number_in(path, f[4]);
    r.error_easy = number_in(path, f[5]);
    r.error_hard = number_in(path, f[6]);
    sweep.rows.push_back(r);
  }
  return sweep;
}

DynamicSweep read_dynamic_sweep_csv(const std::string& path) {
  DynamicSweep sweep;
  for (const auto& f : read_csv_rows(path, 6)) {
    DynamicRow r;
    r.tau = number_in(path, f[0]);
    r.accuracy = number_in(path, f[1]);
    r.mean_macs = number_in(path, f[2]);
    r.ms_per_image = number_in(path, f[3]);
    sweep.batch_size = static_cast<int64_t>(number_in(path, f[4]));
    for (size_t i = 5; i < f.size(); ++i) r.exit_share.push_back(number_in(path, f[i]));
    sweep.rows.push_back(std::move(r));
  }
  return sweep;
}

std::vector<ModelExitReport> redraw_exit_charts(const std::string& report_dir) {
  const auto config_path = (fs::path(report_dir) / "config.json").string();
  std::ifstream in(config_path);
  if (!in) throw std::invalid_argument(config_path + ": cannot read (not a folder that rla exits wrote?)");
  nlohmann::json config;
  try {
    in >> config;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(config_path + ": not JSON (" + e.what() + ")");
  }
  if (!config.contains("runs") || !config["runs"].is_array() || config["runs"].empty())
    throw std::invalid_argument(config_path + ": no \"runs\" list");
  const bool shared_easy = config.contains("easy_from") && !config["easy_from"].empty();
  std::vector<ModelExitReport> reports;
  for (const auto& run_json : config["runs"]) {
    const auto run = run_json.get<std::string>();
    inference::LoadOptions o;  // the model and its heads only: for the series' name
    o.execution = inference::Execution::kEager;
    o.with_exits = true;
    const auto m = inference::load_model(run, o);
    ModelExitReport rep;
    const auto [label, stem] = series_names(m, run, reports);
    rep.label = label;
    const auto base = (fs::path(report_dir) / stem).string();
    rep.depth = read_depth_sweep_csv(base + "_depth.csv");
    rep.depth.shared_easy = shared_easy;
    rep.dynamic = read_dynamic_sweep_csv(base + "_dynamic.csv");
    rep.dynamic.repeats = config.value("repeats", 1);
    rep.dynamic.threads = config.value("threads", 1);
    reports.push_back(std::move(rep));
  }
  save_depth_chart((fs::path(report_dir) / "depth_sweep.png").string(), reports);
  save_dynamic_chart((fs::path(report_dir) / "dynamic.png").string(), reports);
  return reports;
}

std::vector<ModelExitReport> run_exit_reports(const ExitReportConfig& config) {
  if (config.runs.empty() || config.runs.size() > kMaxExitRuns)
    throw std::invalid_argument(
        fmt::format("exit reports take 1 to {} runs, got {}", kMaxExitRuns, config.runs.size()));
  if (config.out_dir.empty()) throw util::FieldError("out_dir", "out_dir is required");
  if (config.batch_size <= 0)
    throw util::FieldError("batch_size",
                           fmt::format("batch_size must be positive, got {}", config.batch_size));
  if (config.repeats < 1)  // before any model is loaded (dynamic_sweep would only say so at the end)
    throw util::FieldError("repeats", fmt::format("repeats must be >= 1, got {}", config.repeats));
  fs::create_directories(config.out_dir);
  write_text((fs::path(config.out_dir) / "config.json").string(), to_json(config).dump(2) + "\n");
  std::vector<ModelExitReport> reports;
  std::string dataset;
  const auto easy =
      config.easy_from.empty() ? torch::Tensor() : easy_by_agreement(config.easy_from, config.limit_test);
  for (const auto& run : config.runs) {
    auto m = load_with_exits(run, config.limit_test);
    const auto ds = m.dataset;
    if (!dataset.empty() && ds != dataset)
      throw std::invalid_argument(
          fmt::format("the runs were trained on different datasets ({} vs {})", dataset, ds));
    dataset = ds;
    data::LoaderOptions lo;
    lo.batch_size = config.batch_size;
    lo.shuffle = false;
    lo.workers = 0;
    data::DataLoader loader(m.data->test, m.data->eval_transforms, lo);
    const auto batches = collect_batches(loader);
    ModelExitReport rep;
    const auto [label, stem_name] = series_names(m, run, reports);
    rep.label = label;
    std::optional<engine::Progress> progress;
    if (config.show_progress)
      progress.emplace(
          fmt::format("exits {}/{} {}", reports.size() + 1, config.runs.size(), rep.label),
          batches.size() + dynamic_sweep_steps(batches.size(), config.taus.size(), config.repeats));
    engine::Progress* p = progress ? &*progress : nullptr;
    rep.depth = depth_sweep(*m.net, *m.heads, batches, m.data->input_shape, easy, p);
    rep.dynamic =
        dynamic_sweep(*m.net, *m.heads, batches, config.taus, m.data->input_shape, config.repeats, p);
    if (p) p->finish("done");
    const auto stem = (fs::path(config.out_dir) / stem_name).string();
    write_depth_sweep_csv(stem + "_depth.csv", rep.depth);
    write_dynamic_sweep_csv(stem + "_dynamic.csv", rep.dynamic);
    reports.push_back(std::move(rep));
  }
  save_depth_chart((fs::path(config.out_dir) / "depth_sweep.png").string(), reports);
  save_dynamic_chart((fs::path(config.out_dir) / "dynamic.png").string(), reports);
  return reports;
}

}  // namespace rla::tasks
