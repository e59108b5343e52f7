#pragma once
// The uint8 kernels of the int8 graph (inference/quantized.h), on per-tensor affine quint8 tensors
// [N, C, H, W] in channels-last order: plain loops the compiler vectorizes. LibTorch 1.13 without
// FBGEMM quantizes and dequantizes element by element, about 10x slower (docs/deploy.md), its
// quantized::cat took half a millisecond per RLA block at batch 32, and the RLA state update would
// otherwise cross between uint8 and float twice per block.
#include <ATen/ATen.h>

#include <vector>

namespace rla::inference::int8 {

/// q [any shape] quint8 -> float, (q - zero_point) * scale (at::dequantize).
at::Tensor dequantize(const at::Tensor& q);

/// t float [any shape] -> quint8 with (scale, zero_point), rounding half to even as
/// at::quantize_per_tensor does; 4-D results are channels-last.
at::Tensor quantize(const at::Tensor& t, double scale, int64_t zero_point);

/// Channel concatenation (quantized::cat along dim 1) of quint8 tensors [N, C_i, H, W] into one
/// with (scale, zero_point): each input's requantization is a 256-entry table.
at::Tensor channel_cat(const std::vector<at::Tensor>& parts, double scale, int64_t zero_point);

/// The RLA state update in one pass: quantize(tanh(a + h * factor[c]), scale, zero_point) for quint8
/// a and h of one shape [N, k, H, W] and factor float [k] (any shape of k elements). The traced
/// inference graph has it as addcmul(conv_out(y), h, bn_scale) followed by tanh.
at::Tensor state_update(const at::Tensor& a, const at::Tensor& h, const at::Tensor& factor, double scale,
                        int64_t zero_point);

/// Max pooling (at::max_pool2d, dilation 1, floor sizes) of a quint8 tensor [N, C, H, W] on its
/// codes: exactly quantize(max_pool2d(dequantize(q))) with q's scale and zero point.
at::Tensor max_pool2d(const at::Tensor& q, at::IntArrayRef kernel, at::IntArrayRef stride,
                      at::IntArrayRef padding);

/// tanh of a quint8 tensor into (scale, zero_point): one 256-entry table.
at::Tensor tanh(const at::Tensor& q, double scale, int64_t zero_point);

/// tanh by Lambert's continued fraction x / (1 + x²/(3 + x²/(5 + ...))), its convergent after 13
/// terms evaluated by the three-term recurrence, on x clamped to ±9: within 1e-6 of tanh in float
/// (tests/unit/test_quantized.cpp) with no libm call, so that state_update's loop vectorizes.
inline float tanh_continued_fraction(float x) {
  x = x < -9.0f ? -9.0f : (x > 9.0f ? 9.0f : x);
  const float x2 = x * x;
  float num_prev = 0.0f, num = x, den_prev = 1.0f, den = 1.0f;
  for (int k = 2; k <= 13; ++k) {
    const float b = static_cast<float>(2 * k - 1);
    const float num_next = b * num + x2 * num_prev, den_next = b * den + x2 * den_prev;
    num_prev = num;
    num = num_next;
    den_prev = den;
    den = den_next;
  }
  const float t = num / den;  // the convergent overshoots 1 slightly near |x| = 9
  return t < -1.0f ? -1.0f : (t > 1.0f ? 1.0f : t);
}

}  // namespace rla::inference::int8
