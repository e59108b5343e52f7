// RandomResizedCrop and Resize + CenterCrop with torchvision's semantics (transforms.py,
// tensor path, bilinear, antialias off). Declared in rla/data/transforms.h.
#include <cmath>

#include "rla/data/image_io.h"
#include "rla/data/transforms.h"

namespace rla::data {
namespace {

// Python's round(): halves go to the even neighbour (nearbyint in the default rounding mode).
int64_t py_round(double x) {
  return static_cast<int64_t>(std::nearbyint(x));
}

void check_image(const torch::Tensor& image, const char* who) {
  TORCH_CHECK(image.dim() == 3 && image.is_floating_point(), who, " expects a float [C, H, W] image, got ",
              image.scalar_type(), " ", image.sizes());
  TORCH_CHECK(image.size(1) > 0 && image.size(2) > 0, who, ": empty image ", image.sizes());
}

struct CropBox {
  int64_t top, left, height, width;
};

// RandomResizedCrop.get_params with ratio (3/4, 4/3).
CropBox random_box(int64_t height, int64_t width, double scale_min, double scale_max, Rng& rng) {
  const double area = static_cast<double>(height) * static_cast<double>(width);
  const double log_lo = std::log(3.0 / 4.0), log_hi = std::log(4.0 / 3.0);
  std::uniform_real_distribution<double> scale_dist(scale_min, scale_max), log_ratio_dist(log_lo, log_hi);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * scale_dist(rng);
    const double ratio = std::exp(log_ratio_dist(rng));
    const int64_t w = py_round(std::sqrt(target_area * ratio));
    const int64_t h = py_round(std::sqrt(target_area / ratio));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const int64_t top = std::uniform_int_distribution<int64_t>(0, height - h)(rng);
      const int64_t left = std::uniform_int_distribution<int64_t>(0, width - w)(rng);
      return {top, left, h, w};
    }
  }
  // Fallback: the largest centred box whose aspect ratio is within the allowed range.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < 3.0 / 4.0) {
    h = std::min(height, py_round(static_cast<double>(w) / (3.0 / 4.0)));
  } else if (in_ratio > 4.0 / 3.0) {
    w = std::min(width, py_round(static_cast<double>(h) * (4.0 / 3.0)));
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

torch::Tensor crop(const torch::Tensor& image, const CropBox& box) {
  return image.slice(1, box.top, box.top + box.height).slice(2, box.left, box.left + box.width);
}

}  // namespace

Transform random_resized_crop(int64_t size, double scale_min, double scale_max) {
  TORCH_CHECK(size > 0, "random_resized_crop: size must be positive, got ", size);
  TORCH_CHECK(scale_min > 0 && scale_min <= scale_max && scale_max <= 1.0,
              "random_resized_crop: need 0 < scale_min <= scale_max <= 1, got ", scale_min, ", ", scale_max);
  return [size, scale_min, scale_max](const torch::Tensor& image, Rng& rng) {
    check_image(image, "random_resized_crop");
    const CropBox box = random_box(image.size(1), image.size(2), scale_min, scale_max, rng);
    return resize_image(crop(image, box).contiguous(), size, size);
  };
}

Transform resize_center_crop(int64_t resize, int64_t crop_size) {
  TORCH_CHECK(resize > 0 && crop_size > 0, "resize_center_crop: sizes must be positive, got ", resize, ", ",
              crop_size);
  return [resize, crop_size](const torch::Tensor& image, Rng&) {
    check_image(image, "resize_center_crop");
    // transforms.Resize(int): the short side becomes `resize`, the long side int(resize * long / short).
    const int64_t h = image.size(1), w = image.size(2);
    int64_t new_h = resize, new_w = resize;
    if (h < w) {
      new_w =
          static_cast<int64_t>(static_cast<double>(resize) * static_cast<double>(w) / static_cast<double>(h));
    } else if (w < h) {
      new_h =
          static_cast<int64_t>(static_cast<double>(resize) * static_cast<double>(h) / static_cast<double>(w));
    }
    torch::Tensor resized = resize_image(image, new_h, new_w);
    // transforms.CenterCrop: zero-pad when the crop is larger, then take the centred window.
    if (crop_size > new_h || crop_size > new_w) {
      const int64_t pad_h = std::max<int64_t>(crop_size - new_h, 0),
                    pad_w = std::max<int64_t>(crop_size - new_w, 0);
      namespace F = torch::nn::functional;
      resized = F::pad(resized, F::PadFuncOptions({pad_w / 2, (pad_w + 1) / 2, pad_h / 2, (pad_h + 1) / 2}));
      new_h = resized.size(1);
      new_w = resized.size(2);
    }
    const int64_t top = py_round(static_cast<double>(new_h - crop_size) / 2.0);
    const int64_t left = py_round(static_cast<double>(new_w - crop_size) / 2.0);
    return crop(resized, {top, left, crop_size, crop_size}).contiguous();
  };
}

}  // namespace rla::data
