#pragma once
// The uint8 kernels of the int8 graph (inference/quantized.h), on per-tensor affine quint8 tensors
// [N, C, H, W] in channels-last order: plain loops the compiler vectorizes. LibTorch 1.13 without
// FBGEMM quantizes and dequantizes element by element, about 10x slower (docs/deploy.md), its
// quantized::cat took half a millisecond per RLA block at batch 32, and the RLA state update would
// otherwise cross between uint8 and float twice per block.
#include <ATen/ATen.h>

#include <array>

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

/// Average pooling (at::avg_pool2d without divisor_override) of a quint8 tensor [N, C, H, W] on its
/// codes, keeping q's scale and zero point: quantize(avg_pool2d(dequantize(q))) but for a value
/// within float rounding of a code boundary.
at::Tensor avg_pool2d(const at::Tensor& q, at::IntArrayRef kernel, at::IntArrayRef stride,
                      at::IntArrayRef padding, bool ceil_mode, bool count_include_pad);

/// tanh of a quint8 tensor into (scale, zero_point): one 256-entry table.
at::Tensor tanh(const at::Tensor& q, double scale, int64_t zero_point);

namespace detail {
/// The 13th convergent of Lambert's continued fraction tanh x = x / (1 + x²/(3 + x²/(5 + ...)))
/// as x · P(x²) / Q(x²), both polynomials of degree 6 divided by Q(0). Built from the three-term
/// recurrence P_k = (2k - 1) P_{k-1} + x² P_{k-2} (likewise Q; P_0 = 0, P_1 = 1, Q_0 = Q_1 = 1).
struct TanhConvergent {
  std::array<double, 7> p{}, q{};
};
constexpr TanhConvergent tanh_convergent() {
  std::array<double, 7> p_prev{}, p{}, q_prev{}, q{};
  p[0] = 1;
  q_prev[0] = 1;
  q[0] = 1;
  for (int k = 2; k <= 13; ++k) {
    std::array<double, 7> p_next{}, q_next{};
    for (int i = 0; i < 7; ++i) {
      p_next[i] = (2 * k - 1) * p[i] + (i > 0 ? p_prev[i - 1] : 0.0);
      q_next[i] = (2 * k - 1) * q[i] + (i > 0 ? q_prev[i - 1] : 0.0);
    }
    p_prev = p;
    p = p_next;
    q_prev = q;
    q = q_next;
  }
  TanhConvergent c;
  for (int i = 0; i < 7; ++i) {
    c.p[i] = p[i] / q[0];
    c.q[i] = q[i] / q[0];
  }
  return c;
}
inline constexpr TanhConvergent kTanhConvergent = tanh_convergent();
}  // namespace detail

/// tanh by the convergent above on x clamped to ±9, P and Q by Horner's rule in x² (two chains of
/// six steps, where the recurrence is one chain of twelve): within 1e-6 of tanh in float
/// (tests/unit/test_quantized.cpp) with no libm call, so that state_update's loop vectorizes.
inline float tanh_continued_fraction(float x) {
  x = x < -9.0f ? -9.0f : (x > 9.0f ? 9.0f : x);
  const float t = x * x;
  const auto& c = detail::kTanhConvergent;
  float p = static_cast<float>(c.p[6]), q = static_cast<float>(c.q[6]);
  for (int i = 5; i >= 0; --i) {
    p = p * t + static_cast<float>(c.p[i]);
    q = q * t + static_cast<float>(c.q[i]);
  }
  const float r = x * p / q;  // the convergent overshoots 1 slightly near |x| = 9
  return r < -1.0f ? -1.0f : (r > 1.0f ? 1.0f : r);
}

}  // namespace rla::inference::int8
