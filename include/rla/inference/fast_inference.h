#pragma once
// The fast inference path: a copy of a trained network rewritten into its inference form by the
// network itself (NetworkImpl::prepare_inference: BatchNorm folded into the preceding
// convolution and the RLA state BN into the cell, channels-last weights, convolutions calling
// oneDNN directly, and for ImageNet-style ResNets oneDNN-layout activations end to end), run
// under InferenceMode. The source network is only read: it keeps training, saving and
// evaluating as before. Every family and variant of the zoo gets it; docs/performance.md has
// what each part measured.
#include <torch/torch.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rla/models/network.h"

namespace rla::inference {

using FastOptions = models::InferenceOptions;

class FastNetwork {
 public:
  /// Copies `net` (its current weights and running statistics: later changes to `net` are not
  /// seen) and prepares the copy. Throws std::invalid_argument for an unknown backend.
  explicit FastNetwork(const models::Network& net, FastOptions options = {});
  /// input [N, C_in, H, W] -> logits [N, classes], equal to net->eval() forward within float
  /// rounding. Runs under InferenceMode; the result is an inference tensor. At batch 1 on several
  /// threads, once a first forward of an input size has shown that every convolution runs in
  /// bands of rows, the later ones run in a band team (models/band_team.h).
  torch::Tensor forward(const torch::Tensor& input);
  torch::Tensor operator()(const torch::Tensor& input) { return forward(input); }
  /// "mkldnn" (oneDNN-layout activations), "channels-last" or "nchw" (dense tensors): what a
  /// float CPU input runs through.
  std::string backend() const { return net_->inference_backend(); }
  /// Number of BatchNorms folded into a convolution.
  int64_t folded_batchnorms() const { return net_->folded_batchnorms(); }
  const FastOptions& options() const { return options_; }
  /// The prepared copy (its state_dict holds the folded weights).
  const models::Network& network() const { return net_; }

 private:
  /// Per batch-1 input size: whether its first forward ran every layer in bands (shared by copies,
  /// which share the prepared network too).
  struct TeamFit {
    std::mutex mutex;
    std::map<std::vector<int64_t>, bool> by_size;
  };
  FastOptions options_;
  models::Network net_;
  std::shared_ptr<TeamFit> team_fit_ = std::make_shared<TeamFit>();
};

}  // namespace rla::inference
