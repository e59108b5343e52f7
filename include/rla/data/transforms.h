#pragma once
// Per-sample image transforms. Each takes a float image [C, H, W] (values 0..1 before
// normalisation) and the sample's own random generator, so results depend only on
// (seed, epoch, sample index), never on thread scheduling.
#include <torch/torch.h>

#include <functional>
#include <random>
#include <vector>

#include "rla/data/dataset.h"

namespace rla::data {

using Rng = std::mt19937_64;
using Transform = std::function<torch::Tensor(const torch::Tensor& image, Rng& rng)>;

/// Applies transforms in order.
torch::Tensor apply_all(const std::vector<Transform>& transforms, torch::Tensor image, Rng& rng);

/// Zero-pads by `padding` on every side, then crops a random size x size window.
Transform random_crop(int64_t size, int64_t padding);
/// Mirrors left-right with probability p.
Transform horizontal_flip(double p = 0.5);
/// (x - mean[c]) / std[c] per channel.
Transform normalize(const Normalization& n);
/// torchvision RandomResizedCrop: random area in [scale_min, scale_max] of the image and aspect
/// ratio in [3/4, 4/3] (log-uniform), bilinear resize to size x size; falls back to a centre crop
/// after 10 failed tries.
Transform random_resized_crop(int64_t size, double scale_min = 0.08, double scale_max = 1.0);
/// Resize so the short side is `resize` (bilinear), then centre-crop crop x crop.
Transform resize_center_crop(int64_t resize, int64_t crop);

}  // namespace rla::data
