#include "rla/models/network.h"

#include "rla/models/layers.h"

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
  // An empty batch or image would reach oneDNN's kernels with zero-sized buffers.
  TORCH_CHECK(input.size(0) > 0 && input.size(2) > 0 && input.size(3) > 0,
              "model expects a non-empty input (N, H, W > 0), got ", input.sizes());
}

FlowState NetworkImpl::initial_state(torch::Tensor x, int64_t k) {
  FlowState s{std::move(x), {}, k > 0};
  if (k > 0 && s.x.is_mkldnn()) return s;
  // The state takes x's memory format: a channels-last x with an NCHW h would make cat(x, h)
  // and everything after it fall back to NCHW (and mixed-format kernels) in the first block.
  // It is built from x itself, not from x's sizes, so that a traced graph (deploy/export.h)
  // keeps the batch size free.
  if (k > 0) {
    s.h = at::zeros_like(s.x.narrow(1, 0, 1)).expand({-1, k, -1, -1}).contiguous(s.x.suggest_memory_format());
  }
  return s;
}

void NetworkImpl::copy_values(const NetworkImpl& from, NetworkImpl& to) {
  torch::NoGradGuard no_grad;
  const auto a = state_dict(from);
  auto b = state_dict(to);
  TORCH_CHECK(a.size() == b.size(), "copy: ", a.size(), " tensors into ", b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    TORCH_CHECK(a[i].first == b[i].first, "copy: ", a[i].first, " into ", b[i].first);
    b[i].second.set_data(a[i].second.detach().clone());
  }
  to.train(from.is_training());
}

void NetworkImpl::check_inference_options(const InferenceOptions& options) {
  if (options.backend() != "auto" && options.backend() != "mkldnn" && options.backend() != "dense")
    throw std::invalid_argument("inference backend must be auto, mkldnn or dense, got '" + options.backend() +
                                "'");
}

void NetworkImpl::prepare_inference(const InferenceOptions& options) {
  check_inference_options(options);
  finish_inference(options, false, options.channels_last() ? "channels-last" : "nchw");
}

void NetworkImpl::finish_inference(const InferenceOptions& options, bool pack, std::string backend) {
  eval();
  if (options.channels_last()) to_channels_last(*this);
  if (!options.portable()) {
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* conv = m->as<Conv2dImpl>()) conv->use_onednn(pack);
    }
  }
  backend_ = options.portable() ? "portable" : std::move(backend);
  prepared_channels_last_ = options.channels_last();
}

torch::Tensor NetworkImpl::inference_input(const torch::Tensor& input) const {
  if (backend_ == "mkldnn" && input.device().is_cpu() && input.scalar_type() == torch::kFloat &&
      !input.is_mkldnn())
    return input.contiguous().to_mkldnn();
  if (prepared_channels_last_ && !input.is_mkldnn()) return input.contiguous(at::MemoryFormat::ChannelsLast);
  return input;
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
