#pragma once
// An int8 2-D convolution prepared once as a oneDNN primitive (the int8 graph's, inference/quantized.h):
// uint8 channels-last input with a fixed scale and zero point, int8 weights per output channel, uint8
// channels-last output. It computes what quantized::conv2d (and conv2d_relu) computes on oneDNN —
// the same primitive with the same scales — without the per-call work of ATen's path (boxed
// dispatch, descriptors and scales rebuilt, a primitive-cache lookup), which is most of a small
// int8 convolution's time at batch 1 (docs/performance.md). Needs oneDNN 2.x's own headers
// (Debian's libdnnl-dev, the oneDNN libtorch_cpu links); without them create() returns nullptr.
#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

namespace rla::inference::int8 {

/// Whether the int8 graph prepares its convolutions: the build has oneDNN 2.x headers, LibTorch's
/// quantized engine is oneDNN (the numerics the prepared primitive reproduces) and
/// RLA_PREPARED_INT8 is not "0" (for A/B runs).
bool prepared_int8_convs_enabled();
/// Whether residual adds run as their convolution's post-op: prepared_int8_convs_enabled() and
/// RLA_FUSED_INT8_ADD is not "0" (for A/B runs).
bool fused_int8_adds_enabled();

/// The units of a prepared int8 convolution's tensors: uint8 codes q stand for scale * (q - zero point).
struct Int8ConvUnits {
  double in_scale = 0.0;
  int64_t in_zero_point = 0;
  double out_scale = 0.0;
  int64_t out_zero_point = 0;
  bool relu = false;  ///< relu(conv (+ residual)) before the output's quantization
  /// With residual_scale > 0 the convolution adds a residual (uint8, in these units) before the
  /// ReLU, as one oneDNN call: quantize(relu(conv(x) + residual)) with one rounding, where
  /// quantized::conv2d then quantized::add_relu round twice.
  double residual_scale = 0.0;
  int64_t residual_zero_point = 0;
};

class PreparedConv {
 public:
  virtual ~PreparedConv() = default;

  /// x quint8 [N, C_in, H, W], channels-last contiguous, in the input units given at creation ->
  /// quint8 [N, C_out, H', W'] channels-last in the output's; an undefined tensor when x (or the
  /// residual) does not fit, or oneDNN has no fast kernel for it (the caller then runs
  /// quantized::conv2d, and quantized::add for a residual). A convolution created with a residual
  /// takes it here: quint8 of the output's shape, channels-last contiguous, in the residual's units.
  virtual at::Tensor run(const at::Tensor& x, const at::Tensor& residual = {}) = 0;

  /// qweight: per-output-channel symmetric qint8 [C_out, C_in, kh, kw] (zero points 0); bias float
  /// [C_out] or undefined. nullptr when !prepared_int8_convs_enabled() or the layer is not supported
  /// (groups other than 1).
  static std::unique_ptr<PreparedConv> create(const at::Tensor& qweight, const at::Tensor& bias,
                                              std::vector<int64_t> stride, std::vector<int64_t> padding,
                                              std::vector<int64_t> dilation, int64_t groups,
                                              const Int8ConvUnits& units);
};

}  // namespace rla::inference::int8
