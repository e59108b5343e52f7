// The single operations of TrivialAugmentWide / RandAugment on uint8 images, with the semantics of
// torchvision 0.14's tensor path (autoaugment.py _apply_op, functional.py, functional_tensor.py).
// Declared in rla/data/augment.h.
//
// Exactness: each float computation is made of the same ATen operations, on the same dtypes and in
// the same order, as torchvision's, so results agree bit for bit with Python on the same LibTorch:
// e.g. the blend is float32 `ratio * img1 + (1 - ratio) * img2` truncated to uint8, AutoContrast's
// scale is reciprocal(max - min) * 255 (Python's `255 / t` is `t.reciprocal() * 255`), and the
// geometric ops build the same float32 sampling grid and call grid_sampler with nearest rounding.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

#include "rla/data/augment.h"

namespace rla::data {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Python's math.radians / math.degrees (x times a constant folded at compile time, as CPython does).
double radians(double degrees) {
  return degrees * (kPi / 180.0);
}
double degrees(double radians) {
  return radians * (180.0 / kPi);
}

void check_uint8_image(const torch::Tensor& image, AugmentOp op) {
  if (!image.defined() || image.dim() != 3 || image.scalar_type() != torch::kByte ||
      (image.size(0) != 1 && image.size(0) != 3) || image.size(1) == 0 || image.size(2) == 0)
    throw std::invalid_argument(
        fmt::format("{}: expects a uint8 image [C, H, W] with C = 1 or 3, got {} {}", augment_op_name(op),
                    image.defined() ? std::string(c10::toString(image.scalar_type())) : "undefined",
                    image.defined() ? c10::str(image.sizes()) : "[]"));
}

// ----- geometry: F.affine / F.rotate, tensor path ---------------------------------------------

// The parameters of functional.py _get_inverse_affine_matrix with scale 1. The centre is relative
// to the image centre (the tensor path's convention): (0, 0) rotates about the middle.
struct AffineParams {
  double angle = 0.0;  ///< degrees, clockwise as F.affine takes it
  double tx = 0.0, ty = 0.0;
  double shear_x = 0.0, shear_y = 0.0;  ///< degrees
  double cx = 0.0, cy = 0.0;
};

// The inverse affine matrix (output pixel -> input pixel), row-major 2 x 3. Written in the order
// of torchvision's expressions, since the grid must agree to the last bit for nearest rounding.
std::array<double, 6> inverse_affine_matrix(const AffineParams& p) {
  const double rot = radians(p.angle), sx = radians(p.shear_x), sy = radians(p.shear_y);
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
  std::array<double, 6> m = {d, -b, 0.0, -c, a, 0.0};
  m[2] += m[0] * (-p.cx - p.tx) + m[1] * (-p.cy - p.ty);
  m[5] += m[3] * (-p.cx - p.tx) + m[4] * (-p.cy - p.ty);
  m[2] += p.cx;
  m[5] += p.cy;
  return m;
}

// functional_tensor._gen_affine_grid for an output the size of the input: pixel centres
// (x, y, 1) [1, H*W, 3] times theta^T normalised by half the size -> grid [1, H, W, 2] in [-1, 1].
torch::Tensor affine_grid(const std::array<double, 6>& m, int64_t height, int64_t width) {
  std::vector<float> values(m.begin(), m.end());
  const auto theta = torch::tensor(values, torch::kFloat).reshape({1, 2, 3});
  const double w = static_cast<double>(width), h = static_cast<double>(height);
  auto base = torch::empty({1, height, width, 3}, torch::kFloat);
  base.select(3, 0).copy_(torch::linspace(-w * 0.5 + 0.5, w * 0.5 + 0.5 - 1, width));
  base.select(3, 1).copy_(torch::linspace(-h * 0.5 + 0.5, h * 0.5 + 0.5 - 1, height).unsqueeze(-1));
  base.select(3, 2).fill_(1);
  const auto rescaled =
      theta.transpose(1, 2) /
      torch::tensor(std::vector<float>{static_cast<float>(0.5 * w), static_cast<float>(0.5 * h)});
  return base.view({1, height * width, 3}).bmm(rescaled).view({1, height, width, 2});
}

// Nearest-neighbour warp with zeros outside (fill 0), rounded back to uint8 [C, H, W].
torch::Tensor warp(const torch::Tensor& image, const AffineParams& params) {
  const auto grid = affine_grid(inverse_affine_matrix(params), image.size(1), image.size(2));
  const auto out = torch::grid_sampler(image.unsqueeze(0).to(torch::kFloat), grid,
                                       /*interpolation_mode=*/1 /* nearest */, /*padding_mode=*/0 /* zeros */,
                                       /*align_corners=*/false);
  return out.squeeze(0).round().to(torch::kByte);
}

torch::Tensor shear(const torch::Tensor& image, double magnitude, bool along_x) {
  // _apply_op passes shear = degrees(atan(magnitude)) about the top-left corner (center=[0, 0],
  // which is (-W/2, -H/2) relative to the image centre).
  AffineParams p;
  (along_x ? p.shear_x : p.shear_y) = degrees(std::atan(magnitude));
  p.cx = -static_cast<double>(image.size(2)) * 0.5;
  p.cy = -static_cast<double>(image.size(1)) * 0.5;
  return warp(image, p);
}

torch::Tensor translate(const torch::Tensor& image, double magnitude, bool along_x) {
  // translate=[int(magnitude), 0]: truncated towards zero. Beyond 1e9 pixels the image is all fill
  // either way; the clamp only keeps the integer conversion defined.
  AffineParams p;
  (along_x ? p.tx : p.ty) = std::trunc(std::clamp(magnitude, -1e9, 1e9));
  return warp(image, p);
}

torch::Tensor rotate(const torch::Tensor& image, double degrees_ccw) {
  AffineParams p;  // F.rotate: counter-clockwise, so F.affine's clockwise angle is negated
  p.angle = -degrees_ccw;
  return warp(image, p);
}

// ----- colour: _blend and what feeds it ------------------------------------------------------

// float32 ratio * img1 + (1 - ratio) * img2, clamped to [0, 255] and truncated to uint8.
torch::Tensor blend(const torch::Tensor& img1, const torch::Tensor& img2, double ratio) {
  return (img1 * ratio + img2 * (1.0 - ratio)).clamp(0, 255).to(torch::kByte);
}

// rgb_to_grayscale: uint8 [3, H, W] -> uint8 [1, H, W], TF's weights, truncated.
torch::Tensor grayscale(const torch::Tensor& image) {
  const auto r = image[0], g = image[1], b = image[2];
  return (r * 0.2989 + g * 0.587 + b * 0.114).to(torch::kByte).unsqueeze(0);
}

void check_factor(AugmentOp op, double magnitude) {
  if (!(1.0 + magnitude >= 0.0))
    throw std::invalid_argument(fmt::format("{}: factor 1 + magnitude must be >= 0, got magnitude {}",
                                            augment_op_name(op), magnitude));
}

torch::Tensor contrast(const torch::Tensor& image, double factor) {
  // The blend target is the mean of the grey image (computed in float32), for every channel.
  const auto grey = image.size(0) == 3 ? grayscale(image) : image;
  const auto mean = grey.to(torch::kFloat).mean({-3, -2, -1}, /*keepdim=*/true);
  return blend(image, mean, factor);
}

torch::Tensor sharpness(const torch::Tensor& image, double factor) {
  const int64_t c = image.size(0), h = image.size(1), w = image.size(2);
  if (h <= 2 || w <= 2) return image;
  // The degenerate image: a 3x3 smoothing kernel [[1,1,1],[1,5,1],[1,1,1]] / 13 on the interior,
  // rounded to uint8; the one-pixel border keeps the original values.
  auto kernel = torch::ones({3, 3}, torch::kFloat);
  kernel[1][1] = 5.0;
  kernel /= kernel.sum();
  const auto blurred =
      torch::conv2d(image.unsqueeze(0).to(torch::kFloat), kernel.expand({c, 1, 3, 3}),
                    /*bias=*/torch::Tensor(), /*stride=*/at::IntArrayRef{1, 1},
                    /*padding=*/at::IntArrayRef{0, 0}, /*dilation=*/at::IntArrayRef{1, 1}, c);
  auto degenerate = image.clone();
  degenerate.slice(1, 1, h - 1).slice(2, 1, w - 1).copy_(blurred.squeeze(0).round().to(torch::kByte));
  return blend(image, degenerate, factor);
}

torch::Tensor posterize(const torch::Tensor& image, double magnitude) {
  if (!(magnitude > -1.0 && magnitude < 9.0))
    throw std::invalid_argument(
        fmt::format("Posterize: bits int(magnitude) must be in [0, 8], got {}", magnitude));
  const auto bits = static_cast<int64_t>(magnitude);  // int(magnitude)
  return image.bitwise_and(static_cast<int64_t>((0xFF << (8 - bits)) & 0xFF));
}

torch::Tensor solarize(const torch::Tensor& image, double threshold) {
  if (threshold > 255.0)
    throw std::invalid_argument(fmt::format("Solarize: threshold must be <= 255, got {}", threshold));
  return torch::where(image.ge(threshold), 255 - image, image);
}

torch::Tensor autocontrast(const torch::Tensor& image) {
  // Per channel, stretch [min, max] to [0, 255]; a constant channel is kept (scale 1, min 0).
  auto minimum = image.amin({-2, -1}, /*keepdim=*/true).to(torch::kFloat);
  const auto maximum = image.amax({-2, -1}, /*keepdim=*/true).to(torch::kFloat);
  auto scale = (maximum - minimum).reciprocal() * 255.0;
  const auto constant = torch::isfinite(scale).logical_not();
  minimum.masked_fill_(constant, 0);
  scale.masked_fill_(constant, 1);
  return ((image - minimum) * scale).clamp(0, 255).to(torch::kByte);
}

// functional_tensor._scale_channel, in integers: lut[v] = (cdf(v - 1) + step / 2) / step, where
// step = (number of pixels outside the last non-empty bin) / 255; step 0 keeps the channel.
void equalize_channel(const uint8_t* in, uint8_t* out, int64_t n) {
  std::array<int64_t, 256> hist{};
  for (int64_t i = 0; i < n; ++i) ++hist[in[i]];
  int64_t total = 0, last_nonzero = 0;
  for (int v = 0; v < 256; ++v) {
    total += hist[v];
    if (hist[v] != 0) last_nonzero = hist[v];
  }
  const int64_t step = (total - last_nonzero) / 255;
  if (step == 0) {
    std::copy(in, in + n, out);
    return;
  }
  std::array<uint8_t, 256> lut{};
  int64_t cumulative = 0;
  for (int v = 0; v < 256; ++v) {
    lut[v] = static_cast<uint8_t>(std::min<int64_t>(255, (cumulative + step / 2) / step));
    cumulative += hist[v];
  }
  for (int64_t i = 0; i < n; ++i) out[i] = lut[in[i]];
}

torch::Tensor equalize(const torch::Tensor& image) {
  const auto in = image.contiguous();
  auto out = torch::empty_like(in);
  const int64_t plane = in.size(1) * in.size(2);
  for (int64_t c = 0; c < in.size(0); ++c)
    equalize_channel(in.data_ptr<uint8_t>() + c * plane, out.data_ptr<uint8_t>() + c * plane, plane);
  return out;
}

}  // namespace

const char* augment_op_name(AugmentOp op) {
  switch (op) {
    case AugmentOp::kIdentity:
      return "Identity";
    case AugmentOp::kShearX:
      return "ShearX";
    case AugmentOp::kShearY:
      return "ShearY";
    case AugmentOp::kTranslateX:
      return "TranslateX";
    case AugmentOp::kTranslateY:
      return "TranslateY";
    case AugmentOp::kRotate:
      return "Rotate";
    case AugmentOp::kBrightness:
      return "Brightness";
    case AugmentOp::kColor:
      return "Color";
    case AugmentOp::kContrast:
      return "Contrast";
    case AugmentOp::kSharpness:
      return "Sharpness";
    case AugmentOp::kPosterize:
      return "Posterize";
    case AugmentOp::kSolarize:
      return "Solarize";
    case AugmentOp::kAutoContrast:
      return "AutoContrast";
    case AugmentOp::kEqualize:
      return "Equalize";
  }
  throw std::invalid_argument(fmt::format("augment_op_name: unknown op {}", static_cast<int>(op)));
}

std::array<AugmentOp, kNumAugmentOps> all_augment_ops() {
  std::array<AugmentOp, kNumAugmentOps> ops{};
  for (int i = 0; i < kNumAugmentOps; ++i) ops[i] = static_cast<AugmentOp>(i);
  return ops;
}

torch::Tensor apply_augment_op(AugmentOp op, const torch::Tensor& image, double magnitude) {
  check_uint8_image(image, op);
  if (!std::isfinite(magnitude))
    throw std::invalid_argument(
        fmt::format("{}: magnitude must be finite, got {}", augment_op_name(op), magnitude));
  switch (op) {
    case AugmentOp::kIdentity:
      return image;
    case AugmentOp::kShearX:
      return shear(image, magnitude, /*along_x=*/true);
    case AugmentOp::kShearY:
      return shear(image, magnitude, /*along_x=*/false);
    case AugmentOp::kTranslateX:
      return translate(image, magnitude, /*along_x=*/true);
    case AugmentOp::kTranslateY:
      return translate(image, magnitude, /*along_x=*/false);
    case AugmentOp::kRotate:
      return rotate(image, magnitude);
    case AugmentOp::kBrightness:
      check_factor(op, magnitude);
      return blend(image, torch::zeros_like(image), 1.0 + magnitude);
    case AugmentOp::kColor:
      check_factor(op, magnitude);
      // A grey image has no saturation to change (torchvision matches PIL here).
      return image.size(0) == 1 ? image : blend(image, grayscale(image), 1.0 + magnitude);
    case AugmentOp::kContrast:
      check_factor(op, magnitude);
      return contrast(image, 1.0 + magnitude);
    case AugmentOp::kSharpness:
      check_factor(op, magnitude);
      return sharpness(image, 1.0 + magnitude);
    case AugmentOp::kPosterize:
      return posterize(image, magnitude);
    case AugmentOp::kSolarize:
      return solarize(image, magnitude);
    case AugmentOp::kAutoContrast:
      return autocontrast(image);
    case AugmentOp::kEqualize:
      return equalize(image);
  }
  throw std::invalid_argument(fmt::format("apply_augment_op: unknown op {}", static_cast<int>(op)));
}

}  // namespace rla::data
