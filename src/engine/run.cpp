#include "rla/engine/run.h"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "rla/engine/checkpoint.h"
#include "rla/util/json_fields.h"

namespace rla::engine {
namespace {

namespace fs = std::filesystem;

template <typename Record>
nlohmann::json record_to_json(const Record& r) {
  nlohmann::json j = nlohmann::json::object();
  Record::visit_fields(r, util::JsonWriter(j));
  return j;
}

template <typename Record>
Record record_from_json(const nlohmann::json& j) {
  Record r;
  Record::visit_fields(r, util::JsonReader(j));
  return r;
}

}  // namespace

nlohmann::json to_json(const EpochMetrics& m) {
  return record_to_json(m);
}

EpochMetrics epoch_metrics_from_json(const nlohmann::json& j) {
  return record_from_json<EpochMetrics>(j);
}

nlohmann::json to_json(const RunResult& r) {
  return record_to_json(r);
}

RunResult run_result_from_json(const nlohmann::json& j) {
  return record_from_json<RunResult>(j);
}

std::string config_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "config.json").string();
}
std::string metrics_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "metrics.jsonl").string();
}
std::string result_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "result.json").string();
}
std::string last_checkpoint_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "last.ckpt").string();
}
std::string best_checkpoint_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "best.ckpt").string();
}

std::string test_predictions_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "test_predictions.txt").string();
}

TrainConfig read_train_config(const std::string& run_dir) {
  const auto path = config_path(run_dir);
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": no such file (not a run folder?)");
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error(path + ": not valid JSON");
  try {
    return train_config_from_json(j);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

std::vector<EpochMetrics> read_metrics(const std::string& run_dir) {
  std::vector<EpochMetrics> out;
  std::ifstream in(metrics_path(run_dir));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    try {
      out.push_back(epoch_metrics_from_json(j));
    } catch (const std::invalid_argument&) {
      continue;
    }
  }
  return out;
}

std::optional<RunResult> read_result(const std::string& run_dir) {
  std::ifstream in(result_path(run_dir));
  if (!in) return std::nullopt;
  auto j = nlohmann::json::parse(in, nullptr, false);
  // Unreadable, or without its one required number: not a result (the run counts as unfinished).
  if (j.is_discarded() || !j.is_object() || !j.contains("test_top1") || !j["test_top1"].is_number())
    return std::nullopt;
  return run_result_from_json(j);
}

std::string resolve_checkpoint(const std::string& run_or_checkpoint) {
  if (!fs::exists(run_or_checkpoint))
    throw std::runtime_error(run_or_checkpoint + ": no such run folder or checkpoint");
  if (!fs::is_directory(run_or_checkpoint)) return run_or_checkpoint;
  const auto last = last_checkpoint_path(run_or_checkpoint);
  if (!fs::exists(last)) throw std::runtime_error(run_or_checkpoint + ": run folder has no last.ckpt");
  return last;
}

TrainConfig checkpoint_config(const std::string& checkpoint) {
  const auto json = nlohmann::json::parse(read_checkpoint_config(checkpoint), nullptr, false);
  if (json.is_discarded() || !json.contains("model"))
    throw std::runtime_error(checkpoint + ": checkpoint carries no training config");
  try {
    return train_config_from_json(json);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(checkpoint + ": " + e.what());
  }
}

}  // namespace rla::engine
