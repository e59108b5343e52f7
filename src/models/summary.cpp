#include "rla/models/summary.h"

#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "rla/models/op_counter.h"

namespace rla::models {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

}  // namespace

std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

ModelSummary summarize(models::NetworkImpl& net, const std::vector<int64_t>& input_chw) {
  TORCH_CHECK(input_chw.size() == 3, "summary needs an input of 3 dims C,H,W, got ", input_chw.size());
  ModelSummary s;
  s.input = {1, input_chw[0], input_chw[1], input_chw[2]};
  std::unordered_map<const torch::nn::Module*, std::string> names;
  for (const auto& item : net.named_modules()) names.emplace(item.value().get(), item.key());

  net.eval();
  torch::NoGradGuard no_grad;
  OpCounter counter;
  auto param = net.parameters().empty() ? torch::Tensor() : net.parameters().front();
  auto out = net.forward(torch::zeros(s.input, param.defined() ? param.options() : torch::TensorOptions()));
  s.output = out.sizes().vec();

  std::unordered_set<const void*> seen;
  for (const auto& r : counter.records) {
    LayerRow row;
    row.kind = r.kind;
    row.out_shape = r.out_shape;
    row.macs = r.macs;
    row.thop_ops = r.thop_ops;
    if (r.module != nullptr) {
      auto it = names.find(r.module);
      row.name = it != names.end() ? it->second : r.kind;
      for (const auto& p : r.module->parameters(/*recurse=*/false))
        if (seen.insert(p.unsafeGetTensorImpl()).second) row.params += p.numel();
    } else {
      row.name = r.label;
    }
    s.macs += row.macs;
    s.thop_ops += row.thop_ops;
    s.rows.push_back(std::move(row));
  }
  s.params = models::count_parameters(net);
  s.state_dict_entries = static_cast<int64_t>(models::state_dict(net).size());
  return s;
}

std::string format_summary(const std::string& model_name, const ModelSummary& s, bool per_layer) {
  std::string out;
  if (per_layer) {
    out += fmt::format("{:<34} {:<18} {:<20} {:>12} {:>15} {:>15}\n", "layer", "type", "output", "params",
                       "MACs", "thop ops");
    out += std::string(119, '-') + "\n";
    for (const auto& r : s.rows) {
      out +=
          fmt::format("{:<34} {:<18} {:<20} {:>12} {:>15} {:>15}\n", r.name, r.kind, shape_str(r.out_shape),
                      with_commas(r.params), with_commas(r.macs), with_commas(r.thop_ops));
    }
    out += std::string(119, '-') + "\n";
  }
  constexpr double kMi = 1024.0 * 1024.0, kGi = 1024.0 * 1024.0 * 1024.0;
  out += fmt::format("model        {}\n", model_name);
  out += fmt::format("input        {}   output {}\n", shape_str(s.input), shape_str(s.output));
  out += fmt::format("parameters   {}  = {:.3f} M (10^6)  = {:.3f} Mi (2^20)\n", with_commas(s.params),
                     s.params / 1e6, s.params / kMi);
  out += fmt::format("MACs         {}  = {:.3f} G (10^9)  = {:.3f} Gi (2^30)\n", with_commas(s.macs),
                     s.macs / 1e9, s.macs / kGi);
  out += fmt::format("thop ops     {}  = {:.3f} G (10^9)  = {:.3f} Gi (2^30)\n", with_commas(s.thop_ops),
                     s.thop_ops / 1e9, s.thop_ops / kGi);
  out += fmt::format("state_dict   {} entries\n", s.state_dict_entries);
  return out;
}

nlohmann::json summary_to_json(const std::string& model_name, const ModelSummary& s) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& r : s.rows) {
    layers.push_back({{"name", r.name},
                      {"type", r.kind},
                      {"output", r.out_shape},
                      {"params", r.params},
                      {"macs", r.macs},
                      {"thop_ops", r.thop_ops}});
  }
  return {{"model", model_name},
          {"input", s.input},
          {"output", s.output},
          {"params", s.params},
          {"params_M", s.params / 1e6},
          {"params_Mi", s.params / (1024.0 * 1024.0)},
          {"macs", s.macs},
          {"thop_ops", s.thop_ops},
          {"thop_ops_G", s.thop_ops / 1e9},
          {"thop_ops_Gi", s.thop_ops / (1024.0 * 1024.0 * 1024.0)},
          {"state_dict_entries", s.state_dict_entries},
          {"layers", layers}};
}

}  // namespace rla::models
