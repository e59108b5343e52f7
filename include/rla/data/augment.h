#pragma once
// The augmentations of the modern training recipe, with torchvision 0.14's semantics:
//   * TrivialAugmentWide and RandAugment (torchvision/transforms/autoaugment.py) on uint8 images,
//     op by op equal to torchvision's tensor path (tests/unit/test_augment.cpp checks every op
//     pixel by pixel against Debian's python3-torchvision);
//   * RandomErasing (transforms.py) on the normalised float image;
//   * Mixup / CutMix on a batch (references/classification/transforms.py RandomMixup and
//     RandomCutmix, switched as timm's Mixup does) and the soft-target cross-entropy they need.
// All randomness comes from a caller's std::mt19937_64 (Rng), never from torch's global generator,
// so a run draws the same augmentations whatever the number of loader threads, and after a resume.
// Bad arguments throw std::invalid_argument with a one-line message naming the value.
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "rla/data/transforms.h"

namespace rla::data {

// ---------------------------------------------------------------------------------------------
// Single operations (autoaugment.py _apply_op)

/// The operations of TrivialAugmentWide / RandAugment, in the order of torchvision's
/// _augmentation_space dictionaries (the policies draw an index into this order).
enum class AugmentOp {
  kIdentity,
  kShearX,
  kShearY,
  kTranslateX,
  kTranslateY,
  kRotate,
  kBrightness,
  kColor,
  kContrast,
  kSharpness,
  kPosterize,
  kSolarize,
  kAutoContrast,
  kEqualize,
};
constexpr int kNumAugmentOps = 14;

/// torchvision's op_name ("ShearX", "AutoContrast", ...).
const char* augment_op_name(AugmentOp op);
/// All ops, in policy order.
std::array<AugmentOp, kNumAugmentOps> all_augment_ops();

/// One op on a uint8 image [C, H, W] (C = 1 or 3) -> uint8 [C, H, W]; mirrors
/// torchvision.transforms.autoaugment._apply_op(img, op_name, magnitude, NEAREST, fill=None).
/// `magnitude` is the float _apply_op receives, sign included: shear = tan of the shear angle,
/// translate = pixels (truncated to int), rotate = degrees counter-clockwise, the four
/// enhancements = factor - 1, posterize = bits kept (truncated), solarize = threshold; ignored by
/// Identity, AutoContrast and Equalize. Pixels moved in from outside the image are 0.
torch::Tensor apply_augment_op(AugmentOp op, const torch::Tensor& image, double magnitude);

// ---------------------------------------------------------------------------------------------
// Policies

enum class AugmentPolicy { kTrivialAugmentWide, kRandAugment };

/// The magnitudes a policy may give one op: `magnitudes[bin]` (empty: the op takes none and gets
/// 0), negated with probability 1/2 when `is_signed`. Values are torchvision's float32 tables
/// (torch.linspace), widened to double as _apply_op receives them.
struct OpMagnitudes {
  std::vector<double> magnitudes;
  bool is_signed = false;
};
/// _augmentation_space(num_bins[, (height, width)]) of TrivialAugmentWide / RandAugment for `op`;
/// RandAugment's translations scale with the image (150/331 of its width / height at most).
OpMagnitudes augment_magnitudes(AugmentPolicy policy, AugmentOp op, int64_t num_bins, int64_t height,
                                int64_t width);

/// One drawn operation.
struct AugmentDraw {
  AugmentOp op = AugmentOp::kIdentity;
  double magnitude = 0.0;
};

/// TrivialAugmentWide.forward: one op, one magnitude bin and one sign drawn uniformly from `rng`.
/// image uint8 [C, H, W] -> uint8 [C, H, W].
torch::Tensor apply_trivial_augment_wide(const torch::Tensor& image, Rng& rng,
                                         int64_t num_magnitude_bins = 31);
/// The draw apply_trivial_augment_wide makes (exposed for tests).
AugmentDraw draw_trivial_augment_wide(Rng& rng, int64_t num_magnitude_bins = 31);

struct RandAugmentOptions {
  TORCH_ARG(int64_t, num_ops) = 2;              ///< N, >= 1
  TORCH_ARG(int64_t, magnitude) = 9;            ///< M, bin index in [0, num_magnitude_bins - 1]
  TORCH_ARG(int64_t, num_magnitude_bins) = 31;  ///< >= 2
};
/// RandAugment.forward: num_ops times, one op drawn uniformly and a random sign, at bin
/// `magnitude`. image uint8 [C, H, W] -> uint8 [C, H, W].
torch::Tensor apply_rand_augment(const torch::Tensor& image, Rng& rng,
                                 const RandAugmentOptions& options = {});
/// One of the draws apply_rand_augment makes, for an image of height x width (exposed for tests).
AugmentDraw draw_rand_augment(Rng& rng, const RandAugmentOptions& options, int64_t height, int64_t width);

/// Transform (float image [C, H, W] in [0, 1], before normalize) applying TrivialAugmentWide to
/// round(x * 255) as uint8 and returning the result / 255. Throws if the image is outside [0, 1].
Transform trivial_augment_wide(int64_t num_magnitude_bins = 31);
/// The same for RandAugment(num_ops, magnitude).
Transform rand_augment(int64_t num_ops = 2, int64_t magnitude = 9, int64_t num_magnitude_bins = 31);

// ---------------------------------------------------------------------------------------------
// RandomErasing (transforms.py), after normalize

struct RandomErasingOptions {
  TORCH_ARG(double, p) = 0.5;  ///< probability of erasing, in [0, 1]
  TORCH_ARG(double, scale_min) = 0.02;
  TORCH_ARG(double, scale_max) = 0.33;  ///< erased area / image area, 0 <= min <= max <= 1
  TORCH_ARG(double, ratio_min) = 0.3;
  TORCH_ARG(double, ratio_max) = 3.3;  ///< height / width of the box, log-uniform, 0 < min <= max
  TORCH_ARG(double, value) = 0.0;      ///< what erased pixels become (every channel)
};
/// A box of rows [top, top + height) and columns [left, left + width); height == 0: none.
struct EraseBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};
/// RandomErasing.get_params: up to 10 tries of area ~ U(scale) * H * W and log-ratio
/// ~ U(log ratio_min, log ratio_max), h = round(sqrt(area * ratio)), w = round(sqrt(area / ratio)),
/// accepted when h < H and w < W; an empty box when every try fails (the image is kept).
EraseBox random_erasing_box(int64_t height, int64_t width, const RandomErasingOptions& options, Rng& rng);
/// Transform (float image [C, H, W]) erasing, with probability p, one random_erasing_box.
Transform random_erasing(const RandomErasingOptions& options);
Transform random_erasing(double p = 0.5);

// ---------------------------------------------------------------------------------------------
// Mixup / CutMix on a batch

struct BatchMixOptions {
  TORCH_ARG(int64_t, num_classes) = 0;    ///< K, > 0
  TORCH_ARG(double, mixup_alpha) = 0.2;   ///< lambda ~ Beta(alpha, alpha); 0 disables Mixup
  TORCH_ARG(double, cutmix_alpha) = 1.0;  ///< 0 disables CutMix; at least one alpha must be > 0
  TORCH_ARG(double, prob) = 1.0;          ///< probability that a batch is mixed at all
  TORCH_ARG(double, switch_prob) = 0.5;   ///< with both alphas > 0: probability of CutMix
};

/// A mixed batch: images float [N, C, H, W], targets float [N, K] (each row sums to 1).
struct MixedBatch {
  torch::Tensor images, targets;
  double lambda = 1.0;  ///< weight of each sample's own label (CutMix: 1 - box area / image area)
  bool cutmix = false;
  EraseBox box;  ///< CutMix: the pasted region
};

/// Mixes a batch with its roll by one (sample i with sample i - 1), as timm's Mixup chooses:
/// with probability `prob`, CutMix (probability switch_prob when both alphas are > 0) or Mixup,
/// lambda ~ Beta(alpha, alpha) from `rng`; otherwise the one-hot targets unchanged.
/// images float [N, C, H, W], labels int64 [N] in [0, K) -> MixedBatch. Inputs are not modified.
MixedBatch mix_batch(const torch::Tensor& images, const torch::Tensor& labels, const BatchMixOptions& options,
                     Rng& rng);

/// RandomMixup with a given lambda: lambda * x + (1 - lambda) * x.roll(1, 0), targets alike.
MixedBatch mixup_batch(const torch::Tensor& images, const torch::Tensor& labels, int64_t num_classes,
                       double lambda);
/// RandomCutmix's box for lambda around centre (cx, cy): half sides int(0.5 * sqrt(1 - lambda) * W)
/// and int(... * H), clipped to the image.
EraseBox cutmix_box(int64_t height, int64_t width, double lambda, int64_t cx, int64_t cy);
/// RandomCutmix with a given lambda and box centre: the box comes from the rolled batch, and
/// lambda becomes 1 - box area / image area.
MixedBatch cutmix_batch(const torch::Tensor& images, const torch::Tensor& labels, int64_t num_classes,
                        double lambda, int64_t cx, int64_t cy);

/// A draw from Beta(alpha, alpha) (alpha > 0) as X / (X + Y), X, Y ~ Gamma(alpha, 1).
double sample_beta(double alpha, Rng& rng);

/// Cross-entropy with soft targets: mean over the batch of -sum_k t_k log softmax(logits)_k,
/// where t = targets * (1 - label_smoothing) + label_smoothing / K — what
/// torch.nn.functional.cross_entropy(logits, targets, label_smoothing=...) computes for
/// probability targets. logits [N, K], targets float [N, K] -> scalar.
torch::Tensor soft_target_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                        double label_smoothing = 0.0);

}  // namespace rla::data
