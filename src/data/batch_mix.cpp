// Mixup and CutMix on a batch with the semantics of torchvision's
// references/classification/transforms.py (RandomMixup, RandomCutmix), chosen between as timm's
// Mixup does, and the soft-target cross-entropy. Declared in rla/data/augment.h.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "rla/data/augment.h"

namespace rla::data {
namespace {

void check_batch(const torch::Tensor& images, const torch::Tensor& labels, int64_t num_classes,
                 const char* who) {
  if (num_classes <= 0)
    throw std::invalid_argument(fmt::format("{}: num_classes must be > 0, got {}", who, num_classes));
  if (!images.defined() || images.dim() != 4 || !images.is_floating_point() || images.size(0) == 0)
    throw std::invalid_argument(fmt::format("{}: expects float images [N, C, H, W] with N >= 1, got {}", who,
                                            images.defined() ? c10::str(images.sizes()) : "undefined"));
  if (!labels.defined() || labels.dim() != 1 || labels.scalar_type() != torch::kLong ||
      labels.size(0) != images.size(0))
    throw std::invalid_argument(
        fmt::format("{}: expects int64 labels [{}], got {} {}", who, images.size(0),
                    labels.defined() ? c10::toString(labels.scalar_type()) : "undefined",
                    labels.defined() ? c10::str(labels.sizes()) : "[]"));
  const int64_t lo = labels.min().item<int64_t>(), hi = labels.max().item<int64_t>();
  if (lo < 0 || hi >= num_classes)
    throw std::invalid_argument(
        fmt::format("{}: labels must be in [0, {}), got values in [{}, {}]", who, num_classes, lo, hi));
}

void check_lambda(double lambda, const char* who) {
  if (!(lambda >= 0.0 && lambda <= 1.0))
    throw std::invalid_argument(fmt::format("{}: lambda must be in [0, 1], got {}", who, lambda));
}

void check_probability(double p, const char* name) {
  if (!(p >= 0.0 && p <= 1.0))
    throw std::invalid_argument(fmt::format("mix_batch: {} must be in [0, 1], got {}", name, p));
}

void check_mix_options(const BatchMixOptions& o) {
  if (o.num_classes() <= 0)
    throw std::invalid_argument(fmt::format("mix_batch: num_classes must be > 0, got {}", o.num_classes()));
  if (!(o.mixup_alpha() >= 0.0 && std::isfinite(o.mixup_alpha())))
    throw std::invalid_argument(fmt::format("mix_batch: mixup_alpha must be >= 0, got {}", o.mixup_alpha()));
  if (!(o.cutmix_alpha() >= 0.0 && std::isfinite(o.cutmix_alpha())))
    throw std::invalid_argument(
        fmt::format("mix_batch: cutmix_alpha must be >= 0, got {}", o.cutmix_alpha()));
  if (o.mixup_alpha() == 0.0 && o.cutmix_alpha() == 0.0)
    throw std::invalid_argument("mix_batch: mixup_alpha and cutmix_alpha are both 0; one must be > 0");
  check_probability(o.prob(), "prob");
  check_probability(o.switch_prob(), "switch_prob");
}

// lambda * a + (1 - lambda) * b, in the order of the reference's in-place mul_/add_.
torch::Tensor mix(const torch::Tensor& a, const torch::Tensor& b, double lambda) {
  return a * lambda + b * (1.0 - lambda);
}

torch::Tensor one_hot(const torch::Tensor& labels, int64_t num_classes, const torch::Tensor& like) {
  return torch::one_hot(labels, num_classes).to(like.scalar_type());
}

}  // namespace

double sample_beta(double alpha, Rng& rng) {
  if (!(alpha > 0.0 && std::isfinite(alpha)))
    throw std::invalid_argument(fmt::format("sample_beta: alpha must be > 0, got {}", alpha));
  std::gamma_distribution<double> gamma(alpha, 1.0);
  const double x = gamma(rng), y = gamma(rng);
  // For tiny alpha both draws can underflow to 0; Beta(alpha, alpha) then tends to a fair coin on {0, 1}.
  if (x + y == 0.0) return std::uniform_int_distribution<int>(0, 1)(rng) == 1 ? 1.0 : 0.0;
  return x / (x + y);
}

MixedBatch mixup_batch(const torch::Tensor& images, const torch::Tensor& labels, int64_t num_classes,
                       double lambda) {
  check_batch(images, labels, num_classes, "mixup_batch");
  check_lambda(lambda, "mixup_batch");
  const auto targets = one_hot(labels, num_classes, images);
  MixedBatch out;
  out.images = mix(images, images.roll(1, 0), lambda);
  out.targets = mix(targets, targets.roll(1, 0), lambda);
  out.lambda = lambda;
  return out;
}

EraseBox cutmix_box(int64_t height, int64_t width, double lambda, int64_t cx, int64_t cy) {
  check_lambda(lambda, "cutmix_box");
  if (cx < 0 || cx >= width || cy < 0 || cy >= height)
    throw std::invalid_argument(
        fmt::format("cutmix_box: centre ({}, {}) outside the {}x{} image", cx, cy, height, width));
  const double r = 0.5 * std::sqrt(1.0 - lambda);
  const auto half_w = static_cast<int64_t>(r * static_cast<double>(width));  // int(): truncation
  const auto half_h = static_cast<int64_t>(r * static_cast<double>(height));
  const int64_t x1 = std::max<int64_t>(cx - half_w, 0), x2 = std::min(cx + half_w, width);
  const int64_t y1 = std::max<int64_t>(cy - half_h, 0), y2 = std::min(cy + half_h, height);
  return {y1, x1, y2 - y1, x2 - x1};
}

MixedBatch cutmix_batch(const torch::Tensor& images, const torch::Tensor& labels, int64_t num_classes,
                        double lambda, int64_t cx, int64_t cy) {
  check_batch(images, labels, num_classes, "cutmix_batch");
  const int64_t h = images.size(2), w = images.size(3);
  const auto box = cutmix_box(h, w, lambda, cx, cy);
  MixedBatch out;
  out.images = images.clone();
  const auto rows = [&box](const torch::Tensor& t) {
    return t.slice(2, box.top, box.top + box.height).slice(3, box.left, box.left + box.width);
  };
  rows(out.images).copy_(rows(images.roll(1, 0)));
  // The label weight is the share of the image each sample really shows.
  out.lambda = 1.0 - static_cast<double>(box.height * box.width) / static_cast<double>(h * w);
  const auto targets = one_hot(labels, num_classes, images);
  out.targets = mix(targets, targets.roll(1, 0), out.lambda);
  out.cutmix = true;
  out.box = box;
  return out;
}

MixedBatch mix_batch(const torch::Tensor& images, const torch::Tensor& labels, const BatchMixOptions& options,
                     Rng& rng) {
  check_mix_options(options);
  check_batch(images, labels, options.num_classes(), "mix_batch");
  // Draw order: apply?, CutMix or Mixup?, lambda, then (CutMix) the box centre x, y.
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  if (!(uniform(rng) < options.prob())) {
    MixedBatch out;
    out.images = images;
    out.targets = one_hot(labels, options.num_classes(), images);
    return out;
  }
  bool use_cutmix = options.cutmix_alpha() > 0.0;
  if (options.mixup_alpha() > 0.0 && options.cutmix_alpha() > 0.0)
    use_cutmix = uniform(rng) < options.switch_prob();
  if (!use_cutmix)
    return mixup_batch(images, labels, options.num_classes(), sample_beta(options.mixup_alpha(), rng));
  const double lambda = sample_beta(options.cutmix_alpha(), rng);
  const int64_t cx = std::uniform_int_distribution<int64_t>(0, images.size(3) - 1)(rng);
  const int64_t cy = std::uniform_int_distribution<int64_t>(0, images.size(2) - 1)(rng);
  return cutmix_batch(images, labels, options.num_classes(), lambda, cx, cy);
}

torch::Tensor soft_target_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                        double label_smoothing) {
  if (!logits.defined() || !targets.defined() || logits.dim() != 2 ||
      !targets.sizes().equals(logits.sizes()) || !targets.is_floating_point())
    throw std::invalid_argument(fmt::format(
        "soft_target_cross_entropy: expects logits [N, K] and float targets of the same shape, got {} and {}",
        logits.defined() ? c10::str(logits.sizes()) : "undefined",
        targets.defined() ? c10::str(targets.sizes()) : "undefined"));
  if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))
    throw std::invalid_argument(
        fmt::format("soft_target_cross_entropy: label_smoothing must be in [0, 1], got {}", label_smoothing));
  const auto k = static_cast<double>(logits.size(1));
  const auto smoothed = targets * (1.0 - label_smoothing) + label_smoothing / k;
  return -(smoothed * torch::log_softmax(logits, 1)).sum(1).mean();
}

}  // namespace rla::data
