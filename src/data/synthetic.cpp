#include "rla/data/synthetic.h"

#include <fmt/format.h>

namespace rla::data {

std::shared_ptr<TensorDataset> make_synthetic(const SyntheticOptions& o) {
  TORCH_CHECK(o.size > 0 && o.num_classes > 0 && o.channels > 0 && o.height > 3 && o.width > 3,
              "synthetic dataset: size, classes, channels must be positive and images at least 4x4");
  // Class patterns: smooth random fields, upsampled from 4x4 noise; fixed by the task seed.
  auto task = at::detail::createCPUGenerator(o.seed + 0x5eed);
  auto coarse = at::randn({o.num_classes, o.channels, 4, 4}, task);
  auto gen = at::detail::createCPUGenerator((o.seed + 0x5eed) * 1000003 + o.split + 1);
  auto patterns = torch::upsample_bilinear2d(coarse, {o.height, o.width}, /*align_corners=*/false);
  auto labels = at::randint(o.num_classes, {o.size}, gen, torch::kLong);
  auto base = patterns.index_select(0, labels);
  auto scale = 0.75 + 0.5 * at::rand({o.size, 1, 1, 1}, gen);
  auto noise = o.noise * at::randn({o.size, o.channels, o.height, o.width}, gen);
  auto images = base * scale + noise;
  images = ((images.clamp(-2.5, 2.5) + 2.5) * (255.0 / 5.0)).round().to(torch::kByte);
  return std::make_shared<TensorDataset>(
      images, labels, o.num_classes,
      fmt::format("synthetic ({} images {}x{}x{}, {} classes, seed {}, split {})", o.size, o.channels,
                  o.height, o.width, o.num_classes, o.seed, o.split));
}

}  // namespace rla::data
