// TrivialAugmentWide, RandAugment (torchvision/transforms/autoaugment.py) and RandomErasing
// (transforms.py): the magnitude tables, the draws from the sample's generator, and the Transform
// factories the loader uses. The single ops are in augment_ops.cpp; declared in rla/data/augment.h.
#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "rla/data/augment.h"

namespace rla::data {
namespace {

// torch.linspace in the default dtype (float32), widened to double as `.item()` does.
std::vector<double> linspace(double start, double end, int64_t steps) {
  const auto t = torch::linspace(start, end, steps, torch::kFloat).to(torch::kDouble);
  return {t.data_ptr<double>(), t.data_ptr<double>() + steps};
}

// 8 - (torch.arange(bins) / ((bins - 1) / divisions)).round().int(): bits kept, 8 down to
// 8 - divisions (rounding halves to even, as torch.round does).
std::vector<double> posterize_bits(int64_t bins, double divisions) {
  const auto bits =
      (8 - (torch::arange(bins) / (static_cast<double>(bins - 1) / divisions)).round().to(torch::kInt))
          .to(torch::kDouble);
  return {bits.data_ptr<double>(), bits.data_ptr<double>() + bins};
}

void check_bins(int64_t bins, const char* who) {
  if (bins < 2)
    throw std::invalid_argument(fmt::format("{}: num_magnitude_bins must be >= 2, got {}", who, bins));
}

void check_rand_augment(const RandAugmentOptions& o) {
  check_bins(o.num_magnitude_bins(), "RandAugment");
  if (o.num_ops() < 1)
    throw std::invalid_argument(fmt::format("RandAugment: num_ops must be >= 1, got {}", o.num_ops()));
  if (o.magnitude() < 0 || o.magnitude() >= o.num_magnitude_bins())
    throw std::invalid_argument(fmt::format("RandAugment: magnitude must be in [0, {}], got {}",
                                            o.num_magnitude_bins() - 1, o.magnitude()));
}

AugmentOp draw_op(Rng& rng) {
  return static_cast<AugmentOp>(std::uniform_int_distribution<int>(0, kNumAugmentOps - 1)(rng));
}

// The sign draw of a signed op (torch.randint(2, (1,)) in torchvision): negative on 1.
double maybe_negate(double magnitude, const OpMagnitudes& space, Rng& rng) {
  if (space.is_signed && std::uniform_int_distribution<int>(0, 1)(rng) == 1) return -magnitude;
  return magnitude;
}

// A float image [C, H, W] in [0, 1] (before normalize) -> uint8 round(x * 255). A tolerance of
// 1e-3 admits float rounding of resized images; anything else means the transform is misplaced.
torch::Tensor to_uint8(const torch::Tensor& image, const char* who) {
  if (!image.defined() || image.dim() != 3 || !image.is_floating_point() || image.numel() == 0)
    throw std::invalid_argument(
        fmt::format("{}: expects a float image [C, H, W], got {} {}", who,
                    image.defined() ? c10::toString(image.scalar_type()) : "undefined",
                    image.defined() ? c10::str(image.sizes()) : "[]"));
  const double lo = image.min().item<double>(), hi = image.max().item<double>();
  if (!(lo >= -1e-3 && hi <= 1.0 + 1e-3))
    throw std::invalid_argument(fmt::format(
        "{}: expects an image in [0, 1] (place it before normalize), got values in [{}, {}]", who, lo, hi));
  return image.mul(255.0).round_().clamp_(0, 255).to(torch::kByte);
}

// Back to float the way the loader converts uint8 (x / 255), so an unchanged image is bit-identical.
torch::Tensor to_float(const torch::Tensor& image) {
  return image.to(torch::kFloat).div_(255.0);
}

void check_erasing(const RandomErasingOptions& o) {
  if (!(o.p() >= 0.0 && o.p() <= 1.0))
    throw std::invalid_argument(fmt::format("random_erasing: p must be in [0, 1], got {}", o.p()));
  if (!(o.scale_min() >= 0.0 && o.scale_min() <= o.scale_max() && o.scale_max() <= 1.0))
    throw std::invalid_argument(fmt::format(
        "random_erasing: need 0 <= scale_min <= scale_max <= 1, got ({}, {})", o.scale_min(), o.scale_max()));
  if (!(o.ratio_min() > 0.0 && o.ratio_min() <= o.ratio_max() && std::isfinite(o.ratio_max())))
    throw std::invalid_argument(fmt::format("random_erasing: need 0 < ratio_min <= ratio_max, got ({}, {})",
                                            o.ratio_min(), o.ratio_max()));
  if (!std::isfinite(o.value()))
    throw std::invalid_argument(fmt::format("random_erasing: value must be finite, got {}", o.value()));
}

}  // namespace

OpMagnitudes augment_magnitudes(AugmentPolicy policy, AugmentOp op, int64_t num_bins, int64_t height,
                                int64_t width) {
  check_bins(num_bins, "augment_magnitudes");
  const bool wide = policy == AugmentPolicy::kTrivialAugmentWide;
  const double shear = wide ? 0.99 : 0.3, rotate = wide ? 135.0 : 30.0, enhance = wide ? 0.99 : 0.9;
  switch (op) {
    case AugmentOp::kIdentity:
    case AugmentOp::kAutoContrast:
    case AugmentOp::kEqualize:
      return {{}, false};
    case AugmentOp::kShearX:
    case AugmentOp::kShearY:
      return {linspace(0.0, shear, num_bins), true};
    case AugmentOp::kTranslateX:
      return {linspace(0.0, wide ? 32.0 : 150.0 / 331.0 * static_cast<double>(width), num_bins), true};
    case AugmentOp::kTranslateY:
      return {linspace(0.0, wide ? 32.0 : 150.0 / 331.0 * static_cast<double>(height), num_bins), true};
    case AugmentOp::kRotate:
      return {linspace(0.0, rotate, num_bins), true};
    case AugmentOp::kBrightness:
    case AugmentOp::kColor:
    case AugmentOp::kContrast:
    case AugmentOp::kSharpness:
      return {linspace(0.0, enhance, num_bins), true};
    case AugmentOp::kPosterize:
      return {posterize_bits(num_bins, wide ? 6.0 : 4.0), false};
    case AugmentOp::kSolarize:
      return {linspace(255.0, 0.0, num_bins), false};
  }
  throw std::invalid_argument(fmt::format("augment_magnitudes: unknown op {}", static_cast<int>(op)));
}

AugmentDraw draw_trivial_augment_wide(Rng& rng, int64_t num_magnitude_bins) {
  check_bins(num_magnitude_bins, "TrivialAugmentWide");
  AugmentDraw d;
  d.op = draw_op(rng);
  // TrivialAugmentWide's tables do not depend on the image size.
  const auto space = augment_magnitudes(AugmentPolicy::kTrivialAugmentWide, d.op, num_magnitude_bins, 0, 0);
  if (!space.magnitudes.empty())
    d.magnitude = space.magnitudes[std::uniform_int_distribution<int64_t>(0, num_magnitude_bins - 1)(rng)];
  d.magnitude = maybe_negate(d.magnitude, space, rng);
  return d;
}

torch::Tensor apply_trivial_augment_wide(const torch::Tensor& image, Rng& rng, int64_t num_magnitude_bins) {
  const auto d = draw_trivial_augment_wide(rng, num_magnitude_bins);
  return apply_augment_op(d.op, image, d.magnitude);
}

AugmentDraw draw_rand_augment(Rng& rng, const RandAugmentOptions& options, int64_t height, int64_t width) {
  check_rand_augment(options);
  AugmentDraw d;
  d.op = draw_op(rng);
  const auto space =
      augment_magnitudes(AugmentPolicy::kRandAugment, d.op, options.num_magnitude_bins(), height, width);
  if (!space.magnitudes.empty()) d.magnitude = space.magnitudes[options.magnitude()];
  d.magnitude = maybe_negate(d.magnitude, space, rng);
  return d;
}

torch::Tensor apply_rand_augment(const torch::Tensor& image, Rng& rng, const RandAugmentOptions& options) {
  check_rand_augment(options);
  if (image.dim() != 3)
    throw std::invalid_argument(
        fmt::format("RandAugment: expects an image [C, H, W], got {}", c10::str(image.sizes())));
  auto out = image;
  for (int64_t i = 0; i < options.num_ops(); ++i) {
    const auto d = draw_rand_augment(rng, options, image.size(1), image.size(2));
    out = apply_augment_op(d.op, out, d.magnitude);
  }
  return out;
}

Transform trivial_augment_wide(int64_t num_magnitude_bins) {
  check_bins(num_magnitude_bins, "trivial_augment_wide");
  return [num_magnitude_bins](const torch::Tensor& image, Rng& rng) {
    return to_float(
        apply_trivial_augment_wide(to_uint8(image, "trivial_augment_wide"), rng, num_magnitude_bins));
  };
}

Transform rand_augment(int64_t num_ops, int64_t magnitude, int64_t num_magnitude_bins) {
  const auto options =
      RandAugmentOptions().num_ops(num_ops).magnitude(magnitude).num_magnitude_bins(num_magnitude_bins);
  check_rand_augment(options);
  return [options](const torch::Tensor& image, Rng& rng) {
    return to_float(apply_rand_augment(to_uint8(image, "rand_augment"), rng, options));
  };
}

EraseBox random_erasing_box(int64_t height, int64_t width, const RandomErasingOptions& options, Rng& rng) {
  check_erasing(options);
  const double area = static_cast<double>(height) * static_cast<double>(width);
  std::uniform_real_distribution<double> scale(options.scale_min(), options.scale_max());
  std::uniform_real_distribution<double> log_ratio(std::log(options.ratio_min()),
                                                   std::log(options.ratio_max()));
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double erase_area = area * scale(rng);
    const double ratio = std::exp(log_ratio(rng));
    // Python's round() (halves to even), then int(); h multiplies by the ratio here, unlike
    // RandomResizedCrop, whose ratio is width / height.
    const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(erase_area * ratio)));
    const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(erase_area / ratio)));
    if (!(h < height && w < width)) continue;
    const int64_t top = std::uniform_int_distribution<int64_t>(0, height - h)(rng);
    const int64_t left = std::uniform_int_distribution<int64_t>(0, width - w)(rng);
    return {top, left, h, w};
  }
  return {};
}

Transform random_erasing(const RandomErasingOptions& options) {
  check_erasing(options);
  return [options](const torch::Tensor& image, Rng& rng) {
    if (!image.defined() || image.dim() != 3 || !image.is_floating_point())
      throw std::invalid_argument(fmt::format("random_erasing: expects a float image [C, H, W], got {}",
                                              image.defined() ? c10::str(image.sizes()) : "undefined"));
    if (!(std::uniform_real_distribution<double>(0.0, 1.0)(rng) < options.p())) return image;
    const auto box = random_erasing_box(image.size(1), image.size(2), options, rng);
    if (box.height == 0 || box.width == 0) return image;
    auto out = image.clone();
    out.slice(1, box.top, box.top + box.height)
        .slice(2, box.left, box.left + box.width)
        .fill_(options.value());
    return out;
  };
}

Transform random_erasing(double p) {
  return random_erasing(RandomErasingOptions().p(p));
}

}  // namespace rla::data
