#pragma once
// The channels-last oneDNN convolution that both prepared convolutions describe: the fp32 fast
// path's (src/models/prepared_conv.cpp) and the int8 graph's (src/inference/int8_conv.cpp). Needs
// oneDNN 2.x's own headers (include it where RLA_HAVE_DNNL and DNNL_VERSION_MAJOR == 2). Internal.
#include <omp.h>
#include <dnnl.hpp>

#include <cstdint>
#include <vector>

namespace rla::models {

/// A layer under this many FLOP per image is "small" at batch 1: oneDNN splits it poorly between
/// threads, so both prepared convolutions build such layers' primitives for one thread (fp32 as
/// row bands, int8 whole; docs/performance.md, rounds eight and ten). The CIFAR nets' layers are
/// small, ImageNet's are not.
constexpr double kSmallLayerFlops = 2e7;

/// FLOP per image of a convolution with weight [C_out, C_in, kh, kw] (`weight_numel` values) and
/// an out_h x out_w output.
inline double conv_flops_per_image(int64_t weight_numel, int64_t out_h, int64_t out_w) {
  return 2.0 * static_cast<double>(weight_numel) * static_cast<double>(out_h * out_w);
}

/// While alive (and `on`), OpenMP runs one thread: oneDNN fixes a primitive's thread count when
/// the primitive is built, so a primitive built in this scope later runs on its caller's thread.
class OneThreadBuild {
 public:
  explicit OneThreadBuild(bool on) : saved_(on ? omp_get_max_threads() : 0) {
    if (saved_ > 1) omp_set_num_threads(1);
  }
  ~OneThreadBuild() {
    if (saved_ > 1) omp_set_num_threads(saved_);
  }
  OneThreadBuild(const OneThreadBuild&) = delete;
  OneThreadBuild& operator=(const OneThreadBuild&) = delete;

 private:
  int saved_;
};

/// A 2-D convolution over nhwc src and dst (weights in the layout oneDNN picks): its output size,
/// memory descriptors and forward-inference descriptor.
struct NhwcConv {
  int64_t out_h, out_w;
  dnnl::memory::desc src, dst, bias;  ///< bias: f32 [C_out]
  dnnl::memory::dims weight_dims;     ///< [C_out, C_in, kh, kw]
  dnnl::convolution_forward::desc desc;
};

/// weight: [C_out, C_in, kh, kw] sizes; stride, padding, dilation: 2 values each (dilation counted
/// from 1, as ATen does); activations of type `act` (src and dst), weights of type `wei`. The
/// bottom padding is `padding_bottom` where given (a band of rows of a larger image), else padding[0].
inline NhwcConv nhwc_conv(int64_t n, int64_t h, int64_t w, const std::vector<int64_t>& weight, bool with_bias,
                          const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                          const std::vector<int64_t>& dilation, dnnl::memory::data_type act,
                          dnnl::memory::data_type wei, int64_t padding_bottom = -1) {
  using dnnl::memory;
  const int64_t kh = weight[2], kw = weight[3];
  const int64_t bottom = padding_bottom >= 0 ? padding_bottom : padding[0];
  const int64_t out_h = (h + padding[0] + bottom - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
  const int64_t out_w = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
  const memory::desc src({n, weight[1], h, w}, act, memory::format_tag::nhwc);
  const memory::desc dst({n, weight[0], out_h, out_w}, act, memory::format_tag::nhwc);
  const memory::dims weight_dims = {weight[0], weight[1], kh, kw};
  const memory::desc any_weights(weight_dims, wei, memory::format_tag::any);
  const memory::desc bias({weight[0]}, memory::data_type::f32, memory::format_tag::a);
  const memory::dims strides = {stride[0], stride[1]}, pads = {padding[0], padding[1]},
                     pads_r = {bottom, padding[1]};
  const memory::dims dilates = {dilation[0] - 1, dilation[1] - 1};  // oneDNN counts from 0
  const auto kind = dnnl::prop_kind::forward_inference;
  const auto algorithm = dnnl::algorithm::convolution_direct;
  return {out_h,
          out_w,
          src,
          dst,
          bias,
          weight_dims,
          with_bias ? dnnl::convolution_forward::desc(kind, algorithm, src, any_weights, bias, dst, strides,
                                                      dilates, pads, pads_r)
                    : dnnl::convolution_forward::desc(kind, algorithm, src, any_weights, dst, strides,
                                                      dilates, pads, pads_r)};
}

}  // namespace rla::models
