#include "rla/models/network.h"

#include <unordered_set>

namespace rla::models {

torch::Tensor NetworkImpl::forward(const torch::Tensor& input) {
  FlowState state = stem(input);
  for (size_t i = 0; i < blocks_.size(); ++i) run_block(i, state);
  return head(state);
}

void NetworkImpl::check_input(const torch::Tensor& input, int64_t in_channels) {
  TORCH_CHECK(input.dim() == 4 && input.size(1) == in_channels, "model expects input [N, ", in_channels,
              ", H, W], got ", input.sizes());
}

FlowState NetworkImpl::initial_state(torch::Tensor x, int64_t k) {
  FlowState s{std::move(x), {}};
  // The state takes x's memory format: a channels-last x with an NCHW h would make cat(x, h)
  // and everything after it fall back to NCHW (and mixed-format kernels) in the first block.
  if (k > 0) {
    s.h = torch::zeros({s.x.size(0), k, s.x.size(2), s.x.size(3)},
                       s.x.options().memory_format(s.x.suggest_memory_format()));
  }
  return s;
}

std::vector<torch::Tensor> unique_parameters(const torch::nn::Module& module) {
  std::vector<torch::Tensor> out;
  std::unordered_set<const void*> seen;
  for (const auto& p : module.parameters(/*recurse=*/true)) {
    if (seen.insert(p.unsafeGetTensorImpl()).second) out.push_back(p);
  }
  return out;
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : unique_parameters(module)) n += p.numel();
  return n;
}

namespace {
void collect_state(const torch::nn::Module& m, const std::string& prefix,
                   std::vector<std::pair<std::string, torch::Tensor>>& out) {
  for (const auto& p : m.named_parameters(/*recurse=*/false)) out.emplace_back(prefix + p.key(), p.value());
  for (const auto& b : m.named_buffers(/*recurse=*/false)) out.emplace_back(prefix + b.key(), b.value());
  for (const auto& c : m.named_children()) collect_state(*c.value(), prefix + c.key() + ".", out);
}
}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> state_dict(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  collect_state(module, "", out);
  return out;
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters(true)) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

}  // namespace rla::models
