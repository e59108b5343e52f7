#pragma once
// A classification network used as a backbone (detection, segmentation, retrieval): the main
// path's output after every stage — C2..C5 of an ImageNet-style ResNet, the three stage outputs
// of a CIFAR one — and, on request, the final RLA state h. Mirrors the official mmdetection
// backbone of RLA-Net (RLA_ResNet in the authors' mmdet code: `outs.append(x)` after each stage,
// `frozen_stages`, `norm_eval`), for every ResNet-family model of the zoo, plain and RLA.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "rla/models/network.h"

namespace rla::models {

struct BackboneOptions {
  /// -1: nothing frozen; 0: the stem (conv1, bn1); i > 0: the stem and the first i stages, with
  /// their RLA state BatchNorms, conv_out and recurrent_conv (mmdetection's frozen_stages).
  /// Frozen parameters get requires_grad = false and their modules stay in eval mode.
  TORCH_ARG(int64_t, frozen_stages) = -1;
  /// Every BatchNorm stays in eval mode (running statistics frozen) while the backbone trains.
  TORCH_ARG(bool, norm_eval) = false;
  /// Also return the final state h [N, k, H, W] (RLA nets) after the stage outputs. Without it,
  /// the last block's state BatchNorm feeds nothing: it is frozen like the official backbone's.
  TORCH_ARG(bool, with_state) = false;
};

/// Stage outputs of `net` for input [N, C, H, W]: x after the last block of every stage, in
/// order, then h when options.with_state and the net has a state. Runs the network's own blocks
/// (stem, run_block), so it equals the classification forward up to the head.
std::vector<torch::Tensor> forward_features(NetworkImpl& net, const torch::Tensor& input,
                                            const BackboneOptions& options = {});

/// Names of forward_features' outputs for an input of `input_hw` = {H, W}: "C<i>" for a stage
/// output whose stride is 2^i (C2..C5 for ImageNet ResNets, C0..C2 for CIFAR ones), then "h".
std::vector<std::string> feature_names(NetworkImpl& net, const std::vector<int64_t>& input_chw,
                                       const BackboneOptions& options = {});

/// True for the ResNet family (ResNet, ResNeXt, their RLA, SE and ECA forms, CIFAR ResNets):
/// the networks freeze_backbone accepts.
bool is_resnet_family(const NetworkImpl& net);

/// Applies frozen_stages (requires_grad off) and the eval modes of BackboneOptions to a
/// ResNet-family network. Throws std::invalid_argument for other families or a frozen_stages
/// outside -1..number of stages.
void freeze_backbone(NetworkImpl& net, const BackboneOptions& options);

/// net.train(training), then the frozen parts and (norm_eval) every BatchNorm back to eval mode:
/// what mmdetection's backbone.train() does. Call it instead of net.train().
void set_backbone_training(NetworkImpl& net, bool training, const BackboneOptions& options);

}  // namespace rla::models
