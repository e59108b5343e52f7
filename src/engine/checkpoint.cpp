#include "rla/engine/checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "rla/models/network.h"
#include "rla/util/file.h"

namespace rla::engine {
namespace {

constexpr const char* kModelPrefix = "model/";
constexpr const char* kExtraPrefix = "extra/";
constexpr const char* kAveragePrefix = "ema/";

torch::serialize::InputArchive open_archive(const std::string& path) {
  if (!std::filesystem::exists(path)) throw std::runtime_error(fmt::format("{}: no such checkpoint", path));
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw std::runtime_error(
        fmt::format("{}: not a readable rla checkpoint ({})", path, e.what_without_backtrace()));
  }
  return archive;
}

// Reads every state_dict entry of `module` from "<prefix><name>" and returns the copies to make,
// changing nothing; throws listing what is missing or differs.
std::vector<std::pair<torch::Tensor, torch::Tensor>> read_module(torch::serialize::InputArchive& archive,
                                                                 const std::string& prefix,
                                                                 torch::nn::Module& module,
                                                                 const std::string& path) {
  std::vector<std::string> missing, mismatched;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // {destination, stored}
  for (auto& [name, tensor] : models::state_dict(module)) {
    torch::Tensor stored;
    if (!archive.try_read(prefix + name, stored)) {
      missing.push_back(name);
    } else if (stored.sizes() != tensor.sizes()) {
      mismatched.push_back(fmt::format("{} (checkpoint {}, model {})", name, fmt::join(stored.sizes(), "x"),
                                       fmt::join(tensor.sizes(), "x")));
    } else {
      copies.emplace_back(tensor, stored);
    }
  }
  if (missing.empty() && mismatched.empty()) return copies;
  auto first = [](const std::vector<std::string>& v) {
    return fmt::format(
        "{}",
        fmt::join(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(5, v.size())), ", "));
  };
  throw std::runtime_error(fmt::format(
      "{}: does not fit the {}: {} missing [{}], {} mismatched [{}]", path,
      prefix == kModelPrefix ? "model" : (prefix == kExtraPrefix ? "extra module" : "weight average"),
      missing.size(), first(missing), mismatched.size(), first(mismatched)));
}

}  // namespace

void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const TrainState& s, const torch::nn::Module* extra,
                     const torch::nn::Module* average) {
  torch::serialize::OutputArchive archive;
  for (const auto& [name, tensor] : models::state_dict(model))
    archive.write(kModelPrefix + name, tensor.detach());
  if (extra) {
    for (const auto& [name, tensor] : models::state_dict(*extra))
      archive.write(kExtraPrefix + name, tensor.detach());
    archive.write("state/has_extra", c10::IValue(true));
  }
  if (average) {
    for (const auto& [name, tensor] : models::state_dict(*average))
      archive.write(kAveragePrefix + name, tensor.detach());
    archive.write("state/has_average", c10::IValue(true));
  }
  if (optimizer) {
    torch::serialize::OutputArchive opt;
    optimizer->save(opt);
    archive.write("optimizer", opt);
  }
  archive.write("state/epochs_done", c10::IValue(s.epochs_done));
  archive.write("state/next_batch", c10::IValue(s.next_batch));
  archive.write("state/best_top1", c10::IValue(s.best_top1));
  archive.write("state/best_epoch", c10::IValue(s.best_epoch));
  archive.write("state/fitted_epochs", c10::IValue(s.fitted_epochs));
  archive.write("state/config", c10::IValue(s.config_json));
  if (s.partial_meter.defined()) archive.write("state/partial_meter", s.partial_meter);
  std::ostringstream bytes;
  archive.save_to(bytes);
  util::write_file_atomic(path, bytes.str());
}

bool checkpoint_has_average(const std::string& path) {
  auto archive = open_archive(path);
  c10::IValue v;
  return archive.try_read("state/has_average", v) && v.toBool();
}

void load_checkpoint_average(const std::string& path, torch::nn::Module& model) {
  auto archive = open_archive(path);
  c10::IValue v;
  if (!(archive.try_read("state/has_average", v) && v.toBool()))
    throw std::runtime_error(
        fmt::format("{}: holds no weight average (the run was trained with ema_decay 0)", path));
  auto copies = read_module(archive, kAveragePrefix, model, path);
  torch::NoGradGuard no_grad;
  for (auto& [destination, stored] : copies) destination.copy_(stored);
}

bool checkpoint_has_extra(const std::string& path) {
  auto archive = open_archive(path);
  c10::IValue v;
  return archive.try_read("state/has_extra", v) && v.toBool();
}

std::string read_checkpoint_config(const std::string& path) {
  auto archive = open_archive(path);
  c10::IValue v;
  return archive.try_read("state/config", v) ? v.toStringRef() : std::string();
}

bool is_training_checkpoint(const std::string& path) {
  try {
    auto archive = open_archive(path);
    c10::IValue v;
    return archive.try_read("state/epochs_done", v);
  } catch (const std::exception&) {
    return false;
  }
}

TrainState load_checkpoint(const std::string& path, torch::nn::Module& model,
                           torch::optim::Optimizer* optimizer, torch::nn::Module* extra,
                           torch::nn::Module* average) {
  auto archive = open_archive(path);
  // Everything is read and checked before anything is copied: a checkpoint that does not fit
  // leaves the model (and the extra module) untouched.
  auto copies = read_module(archive, kModelPrefix, model, path);
  if (extra) {
    auto more = read_module(archive, kExtraPrefix, *extra, path);
    copies.insert(copies.end(), more.begin(), more.end());
  }
  if (average) {
    c10::IValue has;
    if (!(archive.try_read("state/has_average", has) && has.toBool()))
      throw std::runtime_error(fmt::format("{}: holds no weight average to resume (ema_decay)", path));
    auto more = read_module(archive, kAveragePrefix, *average, path);
    copies.insert(copies.end(), more.begin(), more.end());
  }
  {
    torch::NoGradGuard no_grad;
    for (auto& [destination, stored] : copies) destination.copy_(stored);
  }
  if (optimizer) {
    torch::serialize::InputArchive opt;
    if (archive.try_read("optimizer", opt)) optimizer->load(opt);
  }
  TrainState s;
  c10::IValue v;
  if (archive.try_read("state/epochs_done", v)) s.epochs_done = v.toInt();
  if (archive.try_read("state/next_batch", v)) s.next_batch = v.toInt();
  if (archive.try_read("state/best_top1", v)) s.best_top1 = v.toDouble();
  if (archive.try_read("state/best_epoch", v)) s.best_epoch = v.toInt();
  if (archive.try_read("state/fitted_epochs", v)) s.fitted_epochs = v.toDouble();
  if (archive.try_read("state/config", v)) s.config_json = v.toStringRef();
  torch::Tensor meter;
  if (archive.try_read("state/partial_meter", meter)) s.partial_meter = meter;
  return s;
}

}  // namespace rla::engine
