#include "rla/inference/fast_inference.h"

namespace rla::inference {

FastNetwork::FastNetwork(const models::Network& net, FastOptions options) : options_(std::move(options)) {
  if (!net) throw std::invalid_argument("FastNetwork: null network");
  net_ = net->copy();
  net_->prepare_inference(options_);
}

torch::Tensor FastNetwork::forward(const torch::Tensor& input) {
  c10::InferenceMode guard;
  return net_->forward(input);
}

}  // namespace rla::inference
