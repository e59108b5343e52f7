// uint8 kernels of the int8 graph (inference/int8_kernels.h): plain loops the compiler vectorizes.
// This file is compiled with -fno-trapping-math -ffinite-math-only -fno-signed-zeros (CMakeLists.txt):
// without the first GCC keeps the clamps as branches and vectorizes none of the float loops, without
// the others the clamps are compare-and-blend sequences instead of min / max (channel_cat took 1.7x as long).
// A NaN activation (a diverged model) gives an arbitrary code instead of 0. On x86-64 with GCC, each loop is
// also built for AVX2 and AVX-512, the best one picked for the CPU at load time (target_clones).
#include "rla/inference/int8_kernels.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

namespace rla::inference::int8 {

namespace {

/// The memory format both tensors share element for element (channels-last for 4-D inputs that have it).
at::MemoryFormat layout_of(const at::Tensor& t) {
  return t.dim() == 4 && t.is_contiguous(at::MemoryFormat::ChannelsLast) ? at::MemoryFormat::ChannelsLast
                                                                         : at::MemoryFormat::Contiguous;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RLA_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RLA_VECTOR_CLONES
#endif

inline float clamp(float v, float lo, float hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

/// Rounds v (|v| < 2^22) half to even and adds zero: the uint8 code, clamped to 0..255. Adding and
/// removing 1.5 * 2^23 rounds to even and vectorizes where std::nearbyint would call libm per element.
inline uint8_t to_uint8_code(float v, float zero) {
  constexpr float kRound = 12582912.0f;
  const float r = (v + kRound) - kRound + zero;
  return static_cast<uint8_t>(static_cast<int32_t>(clamp(r, 0.0f, 255.0f)));
}

RLA_VECTOR_CLONES void dequantize_span(const uint8_t* __restrict in, float* __restrict out, int64_t n,
                                       float scale, float zero) {
  for (int64_t i = 0; i < n; ++i) out[i] = (static_cast<float>(in[i]) - zero) * scale;
}

RLA_VECTOR_CLONES void quantize_span(const float* __restrict in, uint8_t* __restrict out, int64_t n,
                                     float inverse, float zero) {
  for (int64_t i = 0; i < n; ++i) out[i] = to_uint8_code(clamp(in[i] * inverse, -512.0f, 512.0f), zero);
}

/// out[i] = code(in[i] * ratio + shift) for i < n.
RLA_VECTOR_CLONES void requantize_span(const uint8_t* __restrict in, uint8_t* __restrict out, int64_t n,
                                       float ratio, float shift, float zero) {
  for (int64_t i = 0; i < n; ++i) out[i] = to_uint8_code(static_cast<float>(in[i]) * ratio + shift, zero);
}

/// out[j] = code(tanh(sa * a[j] + m[j] * h[j] + offset[j])) for j < n.
RLA_VECTOR_CLONES void state_update_span(const uint8_t* __restrict a, const uint8_t* __restrict h,
                                         const float* __restrict m, const float* __restrict offset,
                                         uint8_t* __restrict out, int64_t n, float sa, float inverse,
                                         float zero) {
  for (int64_t j = 0; j < n; ++j) {
    const float z = sa * static_cast<float>(a[j]) + m[j] * static_cast<float>(h[j]) + offset[j];
    out[j] = to_uint8_code(tanh_continued_fraction(z) * inverse, zero);
  }
}

/// Copies `count` rows of `width` bytes, packed in src, to dst with a row stride of `stride`.
template <int64_t kWidth>
void copy_rows_of(uint8_t* __restrict dst, int64_t stride, const uint8_t* __restrict src, int64_t count) {
  for (int64_t r = 0; r < count; ++r) std::memcpy(dst + r * stride, src + r * kWidth, kWidth);
}

/// copy_rows_of for any width; the channel counts of the zoo's concatenations (RLA's k = 12, 16,
/// 32 and the stages' 16-2048) are fixed-size copies the compiler turns into vector moves, where a
/// memcpy call per pixel and part cost a third of the concatenation.
void copy_rows(uint8_t* dst, int64_t stride, const uint8_t* src, int64_t width, int64_t count) {
  switch (width) {
    case 12:
      return copy_rows_of<12>(dst, stride, src, count);
    case 16:
      return copy_rows_of<16>(dst, stride, src, count);
    case 24:
      return copy_rows_of<24>(dst, stride, src, count);
    case 32:
      return copy_rows_of<32>(dst, stride, src, count);
    case 64:
      return copy_rows_of<64>(dst, stride, src, count);
    default:
      for (int64_t r = 0; r < count; ++r) std::memcpy(dst + r * stride, src + r * width, width);
  }
}

}  // namespace

at::Tensor dequantize(const at::Tensor& q) {
  RECORD_FUNCTION("rla::int8::dequantize", std::vector<c10::IValue>());
  const auto format = layout_of(q);
  const auto src = q.contiguous(format);
  auto out = at::empty(src.sizes(), at::TensorOptions(at::kFloat).memory_format(format));
  const auto* in = reinterpret_cast<const uint8_t*>(src.data_ptr<c10::quint8>());
  auto* dst = out.data_ptr<float>();
  const auto scale = static_cast<float>(q.q_scale());
  const auto zero = static_cast<float>(q.q_zero_point());
  at::parallel_for(0, src.numel(), 16384, [&](int64_t begin, int64_t end) {
    dequantize_span(in + begin, dst + begin, end - begin, scale, zero);
  });
  return out;
}

at::Tensor quantize(const at::Tensor& t, double scale, int64_t zero_point) {
  RECORD_FUNCTION("rla::int8::quantize", std::vector<c10::IValue>());
  const auto format = t.dim() == 4 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const auto src = t.to(at::kFloat).contiguous(format);
  auto out =
      at::_empty_affine_quantized(src.sizes(), at::TensorOptions(at::kQUInt8), scale, zero_point, format);
  const auto* in = src.data_ptr<float>();
  auto* dst = reinterpret_cast<uint8_t*>(out.data_ptr<c10::quint8>());
  const float inverse = static_cast<float>(1.0 / scale), zero = static_cast<float>(zero_point);
  at::parallel_for(0, src.numel(), 16384, [&](int64_t begin, int64_t end) {
    quantize_span(in + begin, dst + begin, end - begin, inverse, zero);
  });
  return out;
}

at::Tensor channel_cat(const std::vector<at::Tensor>& parts, double scale, int64_t zero_point) {
  RECORD_FUNCTION("rla::int8::channel_cat", std::vector<c10::IValue>());
  const auto cl = at::MemoryFormat::ChannelsLast;
  struct Part {
    at::Tensor tensor;
    const uint8_t* data;
    int64_t width;
    float ratio, shift;
    bool same;  ///< already in (scale, zero_point): copied as it is
  };
  std::vector<Part> inputs;
  int64_t channels = 0;
  for (const auto& p : parts) {
    auto t = p.contiguous(cl);
    const auto* data = reinterpret_cast<const uint8_t*>(t.data_ptr<c10::quint8>());
    // (code - zero_in) * scale_in / scale = code * ratio + shift
    const double ratio = t.q_scale() / scale;
    inputs.push_back({t, data, p.size(1), static_cast<float>(ratio),
                      static_cast<float>(-static_cast<double>(t.q_zero_point()) * ratio),
                      t.q_scale() == scale && t.q_zero_point() == zero_point});
    channels += p.size(1);
  }
  const auto& first = inputs.front().tensor;
  auto out = at::_empty_affine_quantized({first.size(0), channels, first.size(2), first.size(3)},
                                         at::TensorOptions(at::kQUInt8), scale, zero_point, cl);
  auto* dst = reinterpret_cast<uint8_t*>(out.data_ptr<c10::quint8>());
  const int64_t pixels = first.size(0) * first.size(2) * first.size(3);
  const auto zero = static_cast<float>(zero_point);
  // Blocks of pixels: each part's block is contiguous, requantized in one vector loop into a buffer,
  // then copied row by row into its slice (per-row vector loops of 12 channels were slower).
  constexpr int64_t kBlock = 64;
  at::parallel_for(0, (pixels + kBlock - 1) / kBlock, 4, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> buffer;
    for (int64_t b = begin; b < end; ++b) {
      const int64_t first = b * kBlock, count = std::min(kBlock, pixels - first);
      int64_t offset = 0;
      for (const auto& p : inputs) {
        const uint8_t* rows = p.data + first * p.width;
        if (!p.same) {
          buffer.resize(static_cast<size_t>(count * p.width));
          requantize_span(rows, buffer.data(), count * p.width, p.ratio, p.shift, zero);
          rows = buffer.data();
        }
        copy_rows(dst + first * channels + offset, channels, rows, p.width, count);
        offset += p.width;
      }
    }
  });
  return out;
}

// Unfused, this is five passes over the state (dequantize a and h, addcmul, libm's tanh per
// element, quantize).
at::Tensor state_update(const at::Tensor& a, const at::Tensor& h, const at::Tensor& factor, double scale,
                        int64_t zero_point) {
  RECORD_FUNCTION("rla::int8::state_update", std::vector<c10::IValue>());
  const auto cl = at::MemoryFormat::ChannelsLast;
  const auto qa = a.contiguous(cl), qh = h.contiguous(cl);
  const int64_t k = a.size(1), pixels = a.numel() / k;
  auto out = at::_empty_affine_quantized(a.sizes(), at::TensorOptions(at::kQUInt8), scale, zero_point, cl);
  // Per channel: a + h * f = sa * qa + m * qh + offset, with m = sh * f and the zero points in offset.
  // The coefficients are laid out for a block of kBlock pixels, so that the inner loop runs over
  // contiguous memory with one coefficient per element.
  constexpr int64_t kBlock = 16;
  const auto f = factor.to(at::kFloat).contiguous();
  const float sa = static_cast<float>(qa.q_scale()), sh = static_cast<float>(qh.q_scale());
  const float za = static_cast<float>(qa.q_zero_point()), zh = static_cast<float>(qh.q_zero_point());
  std::vector<float> m(k * kBlock), offset(k * kBlock);
  for (int64_t c = 0; c < k; ++c) {
    const float mc = sh * f.data_ptr<float>()[c];
    for (int64_t p = 0; p < kBlock; ++p) {
      m[p * k + c] = mc;
      offset[p * k + c] = -sa * za - mc * zh;
    }
  }
  const auto* in_a = reinterpret_cast<const uint8_t*>(qa.data_ptr<c10::quint8>());
  const auto* in_h = reinterpret_cast<const uint8_t*>(qh.data_ptr<c10::quint8>());
  auto* dst = reinterpret_cast<uint8_t*>(out.data_ptr<c10::quint8>());
  const float inverse = static_cast<float>(1.0 / scale), zero = static_cast<float>(zero_point);
  const int64_t blocks = (pixels + kBlock - 1) / kBlock;
  at::parallel_for(0, blocks, 64, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t first = b * kBlock * k, len = std::min(kBlock, pixels - b * kBlock) * k;
      state_update_span(in_a + first, in_h + first, m.data(), offset.data(), dst + first, len, sa, inverse,
                        zero);
    }
  });
  return out;
}

namespace {
/// Output size of a pooling window along one axis, as ATen computes it.
int64_t pooled_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, bool ceil_mode) {
  int64_t out = (in + 2 * pad - kernel + (ceil_mode ? stride - 1 : 0)) / stride + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;  // the last window must start inside
  return out;
}
}  // namespace

at::Tensor max_pool2d(const at::Tensor& q, at::IntArrayRef kernel, at::IntArrayRef stride,
                      at::IntArrayRef padding) {
  RECORD_FUNCTION("rla::int8::max_pool2d", std::vector<c10::IValue>());
  const auto cl = at::MemoryFormat::ChannelsLast;
  const auto src = q.contiguous(cl);
  const int64_t n = src.size(0), c = src.size(1), h = src.size(2), w = src.size(3);
  const int64_t oh = pooled_size(h, kernel[0], stride[0], padding[0], /*ceil_mode=*/false);
  const int64_t ow = pooled_size(w, kernel[1], stride[1], padding[1], /*ceil_mode=*/false);
  auto out = at::_empty_affine_quantized({n, c, oh, ow}, at::TensorOptions(at::kQUInt8), src.q_scale(),
                                         src.q_zero_point(), cl);
  const auto* in = reinterpret_cast<const uint8_t*>(src.data_ptr<c10::quint8>());
  auto* dst = reinterpret_cast<uint8_t*>(out.data_ptr<c10::quint8>());
  // The affine map from codes to values is increasing, so the maximum code is the code of the
  // maximum; padding never wins (each window holds an input pixel, and 0 is the smallest code).
  at::parallel_for(0, n * oh, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / oh, y = row % oh;
      for (int64_t x = 0; x < ow; ++x) {
        uint8_t* o = dst + ((b * oh + y) * ow + x) * c;
        std::fill(o, o + c, uint8_t{0});
        for (int64_t i = 0; i < kernel[0]; ++i) {
          const int64_t iy = y * stride[0] - padding[0] + i;
          if (iy < 0 || iy >= h) continue;
          for (int64_t j = 0; j < kernel[1]; ++j) {
            const int64_t ix = x * stride[1] - padding[1] + j;
            if (ix < 0 || ix >= w) continue;
            const uint8_t* p = in + ((b * h + iy) * w + ix) * c;
            for (int64_t k = 0; k < c; ++k) o[k] = std::max(o[k], p[k]);
          }
        }
      }
    }
  });
  return out;
}

at::Tensor avg_pool2d(const at::Tensor& q, at::IntArrayRef kernel, at::IntArrayRef stride,
                      at::IntArrayRef padding, bool ceil_mode, bool count_include_pad) {
  RECORD_FUNCTION("rla::int8::avg_pool2d", std::vector<c10::IValue>());
  const auto cl = at::MemoryFormat::ChannelsLast;
  const auto src = q.contiguous(cl);
  const int64_t n = src.size(0), c = src.size(1), h = src.size(2), w = src.size(3);
  const int64_t oh = pooled_size(h, kernel[0], stride[0], padding[0], ceil_mode);
  const int64_t ow = pooled_size(w, kernel[1], stride[1], padding[1], ceil_mode);
  const int64_t zero = src.q_zero_point();
  auto out =
      at::_empty_affine_quantized({n, c, oh, ow}, at::TensorOptions(at::kQUInt8), src.q_scale(), zero, cl);
  const auto* in = reinterpret_cast<const uint8_t*>(src.data_ptr<c10::quint8>());
  auto* dst = reinterpret_cast<uint8_t*>(out.data_ptr<c10::quint8>());
  // In codes: mean value / scale = (sum of codes - count * zero) / divisor; a padded pixel is value 0.
  at::parallel_for(0, n * oh, 1, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> sum(static_cast<size_t>(c));
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / oh, y = row % oh;
      for (int64_t x = 0; x < ow; ++x) {
        const int64_t y0 = y * stride[0] - padding[0], x0 = x * stride[1] - padding[1];
        const int64_t y1 = std::min(y0 + kernel[0], h + padding[0]),
                      x1 = std::min(x0 + kernel[1], w + padding[1]);
        const int64_t padded = (y1 - y0) * (x1 - x0);
        const int64_t ya = std::max<int64_t>(y0, 0), yb = std::min(y1, h);
        const int64_t xa = std::max<int64_t>(x0, 0), xb = std::min(x1, w);
        const int64_t count = (yb - ya) * (xb - xa);
        std::fill(sum.begin(), sum.end(), 0);
        for (int64_t iy = ya; iy < yb; ++iy)
          for (int64_t ix = xa; ix < xb; ++ix) {
            const uint8_t* p = in + ((b * h + iy) * w + ix) * c;
            for (int64_t k = 0; k < c; ++k) sum[static_cast<size_t>(k)] += p[k];
          }
        const float inverse = 1.0f / static_cast<float>(count_include_pad ? padded : count);
        const float shift = -static_cast<float>(count * zero) * inverse;
        uint8_t* o = dst + ((b * oh + y) * ow + x) * c;
        for (int64_t k = 0; k < c; ++k)
          o[k] = to_uint8_code(static_cast<float>(sum[static_cast<size_t>(k)]) * inverse + shift,
                               static_cast<float>(zero));
      }
    }
  });
  return out;
}

at::Tensor tanh(const at::Tensor& q, double scale, int64_t zero_point) {
  RECORD_FUNCTION("rla::int8::tanh", std::vector<c10::IValue>());
  const auto format = layout_of(q);
  const auto src = q.contiguous(format);
  std::array<uint8_t, 256> table{};
  const double in_scale = src.q_scale();
  const int64_t in_zero = src.q_zero_point();
  for (int v = 0; v < 256; ++v) {
    const double t = std::tanh(static_cast<double>(v - in_zero) * in_scale);
    table[v] = static_cast<uint8_t>(std::clamp<double>(std::nearbyint(t / scale) + zero_point, 0, 255));
  }
  auto out =
      at::_empty_affine_quantized(src.sizes(), at::TensorOptions(at::kQUInt8), scale, zero_point, format);
  const auto* in = reinterpret_cast<const uint8_t*>(src.data_ptr<c10::quint8>());
  auto* dst = reinterpret_cast<uint8_t*>(out.data_ptr<c10::quint8>());
  at::parallel_for(0, src.numel(), 16384, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dst[i] = table[in[i]];
  });
  return out;
}

}  // namespace rla::inference::int8
