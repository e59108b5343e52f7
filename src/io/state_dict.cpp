// State dicts between checkpoint files and modules (Python's Module.load_state_dict semantics).
#include "rla/io/state_dict.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "rla/io/pytorch_archive.h"
#include "rla/models/network.h"

namespace rla::io {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool all_tensors(const PyDict& d) {
  for (const auto& kv : d.entries())
    if (!kv.second.is_tensor()) return false;
  return true;
}

std::string key_list(const std::vector<std::string>& keys, size_t max = 12) {
  std::string out;
  for (size_t i = 0; i < keys.size() && i < max; ++i) out += (i ? ", " : "") + keys[i];
  if (keys.size() > max) out += fmt::format(", ... ({} in all)", keys.size());
  return out;
}

std::string shape(const at::Tensor& t) {
  return fmt::format("[{}]", fmt::join(t.sizes(), ", "));
}

}  // namespace

NamedTensors extract_state_dict(const PyValue& checkpoint, const StateDictOptions& options) {
  if (!checkpoint.is_dict())
    throw std::runtime_error("checkpoint holds a " + checkpoint.type_name() +
                             ", not a dict with a state dict");
  const PyDict& top = checkpoint.to_dict();
  const PyValue* sd = nullptr;
  if (!options.key.empty()) {
    sd = top.find(options.key);
    if (!sd) throw std::runtime_error(fmt::format("checkpoint has no key '{}'", options.key));
  } else {
    for (const char* k : {"state_dict", "model", "model_state_dict"}) {
      const PyValue* v = top.find(std::string(k));
      if (v && v->is_dict()) {
        sd = v;
        break;
      }
    }
    if (!sd) {
      if (!all_tensors(top)) {
        std::vector<std::string> keys;
        for (const auto& kv : top.entries()) keys.push_back(kv.first.repr());
        throw std::runtime_error("no state dict found: the checkpoint's keys are " + key_list(keys) +
                                 " (choose one with the state-dict key option)");
      }
      sd = &checkpoint;
    }
  }
  if (!sd->is_dict()) throw std::runtime_error("the state dict is a " + sd->type_name() + ", not a dict");
  NamedTensors out;
  std::unordered_set<std::string> seen;
  for (const auto& [k, v] : sd->to_dict().entries()) {
    if (!k.is_string()) throw std::runtime_error("state dict key " + k.repr() + " is not a string");
    std::string name = k.to_string();
    if (!v.is_tensor())
      throw std::runtime_error(
          fmt::format("state dict entry '{}' is a {}, not a tensor", name, v.type_name()));
    if (!options.strip_prefix.empty() && name.rfind(options.strip_prefix, 0) == 0)
      name = name.substr(options.strip_prefix.size());
    if (!seen.insert(name).second)
      throw std::runtime_error(
          fmt::format("state dict has '{}' twice after removing '{}'", name, options.strip_prefix));
    out.emplace_back(std::move(name), v.to_tensor());
  }
  return out;
}

NamedTensors read_state_dict(const std::string& path, const StateDictOptions& options) {
  const PyValue v = read_pytorch_file(path);
  try {
    return extract_state_dict(v, options);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
  }
}

PyValue state_dict_value(const NamedTensors& tensors) {
  auto d = PyValue::dict(/*ordered=*/true);
  for (const auto& [name, t] : tensors) d.mutable_dict().set(PyValue::string(name), PyValue::tensor(t));
  return d;
}

void write_state_dict(const std::string& path, const NamedTensors& tensors) {
  write_pytorch_file(path, state_dict_value(tensors));
}

std::string LoadReport::summary() const {
  std::string out = fmt::format("loaded {} tensors", loaded);
  if (!missing.empty()) out += fmt::format("; missing ({}): {}", missing.size(), key_list(missing));
  if (!unexpected.empty())
    out += fmt::format("; unexpected ({}): {}", unexpected.size(), key_list(unexpected));
  if (!mismatched.empty())
    out += fmt::format("; shape mismatch ({}): {}", mismatched.size(), key_list(mismatched, 6));
  return out;
}

LoadReport load_state_dict(torch::nn::Module& module, const NamedTensors& tensors,
                           const LoadOptions& options) {
  const auto targets = models::state_dict(module);
  std::unordered_map<std::string, const at::Tensor*> file;
  for (const auto& [name, t] : tensors) file[name] = &t;
  LoadReport report;
  std::unordered_set<std::string> used;
  std::vector<std::pair<at::Tensor, const at::Tensor*>> copies;
  for (const auto& [name, dst] : targets) {
    auto it = file.find(name);
    if (it == file.end()) {
      (ends_with(name, ".num_batches_tracked") ? report.tolerated : report.missing).push_back(name);
      continue;
    }
    used.insert(name);
    if (!it->second->sizes().equals(dst.sizes())) {
      report.mismatched.push_back(
          fmt::format("{}: file {} vs model {}", name, shape(*it->second), shape(dst)));
      continue;
    }
    copies.emplace_back(dst, it->second);
  }
  for (const auto& [name, t] : tensors)
    if (!used.count(name)) report.unexpected.push_back(name);
  if (options.strict && !report.ok())
    throw std::runtime_error("state dict does not match the model: " + report.summary());
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(*src);
  report.loaded = copies.size();
  return report;
}

void save_module(const std::string& path, const torch::nn::Module& module) {
  write_state_dict(path, models::state_dict(module));
}

}  // namespace rla::io
