#include "rla/inference/fast_inference.h"

#include <optional>

#include "rla/models/band_team.h"

namespace rla::inference {

FastNetwork::FastNetwork(const models::Network& net, FastOptions options) : options_(std::move(options)) {
  if (!net) throw std::invalid_argument("FastNetwork: null network");
  net_ = net->copy();
  net_->prepare_inference(options_);
}

torch::Tensor FastNetwork::forward(const torch::Tensor& input) {
  c10::InferenceMode guard;
  const int threads = at::get_num_threads();
  if (input.dim() != 4 || input.size(0) != 1 || threads < 2 || !models::band_team_enabled())
    return net_->forward(input);
  std::optional<bool> fit;
  {
    const std::lock_guard<std::mutex> lock(team_fit_->mutex);
    const auto it = team_fit_->by_size.find(input.sizes().vec());
    if (it != team_fit_->by_size.end()) fit = it->second;
  }
  if (!fit) {  // a first forward of this size: are its layers banded, every one of them?
    const int64_t banded = models::count_banded_calls(), unbanded = models::count_unbanded_calls();
    auto out = net_->forward(input);
    const std::lock_guard<std::mutex> lock(team_fit_->mutex);
    team_fit_->by_size[input.sizes().vec()] =
        models::count_banded_calls() > banded && models::count_unbanded_calls() == unbanded;
    return out;
  }
  if (!*fit) return net_->forward(input);
  torch::Tensor out;
  models::with_band_team(threads, [&] { out = net_->forward(input); });
  return out;
}

}  // namespace rla::inference
