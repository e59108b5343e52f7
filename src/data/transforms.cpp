#include "rla/data/transforms.h"

namespace rla::data {

torch::Tensor apply_all(const std::vector<Transform>& transforms, torch::Tensor image, Rng& rng) {
  for (const auto& t : transforms) image = t(image, rng);
  return image;
}

Transform random_crop(int64_t size, int64_t padding) {
  return [size, padding](const torch::Tensor& img, Rng& rng) {
    auto padded = padding > 0 ? torch::constant_pad_nd(img, {padding, padding, padding, padding}, 0) : img;
    const int64_t h = padded.size(1), w = padded.size(2);
    TORCH_CHECK(h >= size && w >= size, "random_crop: image ", h, "x", w, " smaller than crop ", size);
    const int64_t top = std::uniform_int_distribution<int64_t>(0, h - size)(rng);
    const int64_t left = std::uniform_int_distribution<int64_t>(0, w - size)(rng);
    return padded.slice(1, top, top + size).slice(2, left, left + size);
  };
}

Transform horizontal_flip(double p) {
  return [p](const torch::Tensor& img, Rng& rng) {
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < p ? img.flip({2}) : img;
  };
}

Transform normalize(const Normalization& n) {
  TORCH_CHECK(n.mean.size() == n.std.size() && !n.mean.empty(), "normalize: mean/std sizes differ");
  auto mean = torch::tensor(n.mean, torch::kFloat).view({-1, 1, 1});
  auto inv_std = (1.0 / torch::tensor(n.std, torch::kFloat)).view({-1, 1, 1});
  return [mean, inv_std](const torch::Tensor& img, Rng&) {
    TORCH_CHECK(img.size(0) == mean.size(0), "normalize: image has ", img.size(0),
                " channels, statistics have ", mean.size(0));
    return (img - mean) * inv_std;
  };
}

}  // namespace rla::data
