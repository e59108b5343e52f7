#include "rla/engine/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "rla/models/network.h"

namespace rla::engine {
namespace {

constexpr const char* kModelPrefix = "model/";

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(fmt::format("{}: cannot write", tmp));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw std::runtime_error(fmt::format("{}: write failed (disk full?)", tmp));
  }
  fsync_path(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error(fmt::format("{}: cannot rename {} into place", path, tmp));
}

void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const TrainState& s) {
  torch::serialize::OutputArchive archive;
  for (const auto& [name, tensor] : models::state_dict(model))
    archive.write(kModelPrefix + name, tensor.detach());
  if (optimizer) {
    torch::serialize::OutputArchive opt;
    optimizer->save(opt);
    archive.write("optimizer", opt);
  }
  archive.write("state/epochs_done", c10::IValue(s.epochs_done));
  archive.write("state/next_batch", c10::IValue(s.next_batch));
  archive.write("state/best_top1", c10::IValue(s.best_top1));
  archive.write("state/best_epoch", c10::IValue(s.best_epoch));
  archive.write("state/config", c10::IValue(s.config_json));
  if (s.partial_meter.defined()) archive.write("state/partial_meter", s.partial_meter);
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_file_atomic(path, bytes.str());
}

TrainState load_checkpoint(const std::string& path, torch::nn::Module& model,
                           torch::optim::Optimizer* optimizer) {
  if (!std::filesystem::exists(path)) throw std::runtime_error(fmt::format("{}: no such checkpoint", path));
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw std::runtime_error(
        fmt::format("{}: not a readable rla checkpoint ({})", path, e.what_without_backtrace()));
  }
  std::vector<std::string> missing, mismatched;
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : models::state_dict(model)) {
    torch::Tensor stored;
    if (!archive.try_read(kModelPrefix + name, stored)) {
      missing.push_back(name);
    } else if (stored.sizes() != tensor.sizes()) {
      mismatched.push_back(fmt::format("{} (checkpoint {}, model {})", name, fmt::join(stored.sizes(), "x"),
                                       fmt::join(tensor.sizes(), "x")));
    } else {
      tensor.copy_(stored);
    }
  }
  if (!missing.empty() || !mismatched.empty()) {
    throw std::runtime_error(fmt::format(
        "{}: does not fit the model: {} missing [{}], {} mismatched [{}]", path, missing.size(),
        fmt::join(missing.begin(), missing.begin() + std::min<size_t>(5, missing.size()), ", "),
        mismatched.size(),
        fmt::join(mismatched.begin(), mismatched.begin() + std::min<size_t>(5, mismatched.size()), ", ")));
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
  if (archive.try_read("state/config", v)) s.config_json = v.toStringRef();
  torch::Tensor meter;
  if (archive.try_read("state/partial_meter", meter)) s.partial_meter = meter;
  return s;
}

}  // namespace rla::engine
