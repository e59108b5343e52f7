// The prepared int8 convolution (int8_conv.h).
#include "rla/inference/int8_conv.h"

#include <ATen/ATen.h>

#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "rla/config.h"
#include "rla/util/env.h"

#if defined(RLA_HAVE_DNNL)
#include <dnnl.hpp>
#endif

#if defined(RLA_HAVE_DNNL) && DNNL_VERSION_MAJOR == 2
#include "../models/onednn_conv.h"
#endif

namespace rla::inference::int8 {

#if defined(RLA_HAVE_DNNL) && DNNL_VERSION_MAJOR == 2

bool prepared_int8_convs_enabled() {
  static const bool enabled = util::env_switch_on("RLA_PREPARED_INT8");
  // The primitive reproduces oneDNN's quantized::conv2d; under another engine (QNNPACK, FBGEMM)
  // the graph keeps that engine's convolutions throughout.
  return enabled && at::globalContext().qEngine() == at::QEngine::ONEDNN;
}

bool fused_int8_adds_enabled() {
  static const bool enabled = util::env_switch_on("RLA_FUSED_INT8_ADD");
  return enabled && prepared_int8_convs_enabled();
}

namespace {

class DnnlInt8Conv : public PreparedConv {
 public:
  DnnlInt8Conv(const at::Tensor& qweight, const at::Tensor& bias, std::vector<int64_t> stride,
               std::vector<int64_t> padding, std::vector<int64_t> dilation, const Int8ConvUnits& units)
      : weight_(qweight.int_repr().contiguous()),
        stride_(std::move(stride)),
        padding_(std::move(padding)),
        dilation_(std::move(dilation)),
        units_(units),
        in_zero_point_(static_cast<int32_t>(units.in_zero_point)),
        engine_(dnnl::engine::kind::cpu, 0),
        stream_(engine_) {
    // oneDNN 2.x computes dst = output_scale[c] * (sum (src - zp_src) * w + bias[c]) + zp_dst, the
    // bias in the accumulator's units: bias / (in_scale * w_scale[c]).
    const auto w_scales = qweight.q_per_channel_scales().to(at::kDouble).contiguous();
    const int64_t c_out = weight_.size(0);
    output_scales_.resize(c_out);
    const double* ws = w_scales.data_ptr<double>();
    for (int64_t c = 0; c < c_out; ++c)
      output_scales_[c] = static_cast<float>(units.in_scale * ws[c] / units.out_scale);
    // A residual r adds residual_scale * (r - zero point) in real units. Its zero point's part is a
    // constant, folded into the bias here, so that the post-op is a plain scaled sum (which every
    // oneDNN 2.x int8 kernel takes) adding residual_scale / out_scale * r.
    const double residual_offset = -units.residual_scale * static_cast<double>(units.residual_zero_point);
    if (bias.defined() || residual_offset != 0.0) {
      bias_ = at::empty({c_out}, at::kFloat);
      const auto b = bias.defined() ? bias.to(at::kDouble).contiguous() : at::zeros({c_out}, at::kDouble);
      for (int64_t c = 0; c < c_out; ++c)
        bias_.data_ptr<float>()[c] =
            static_cast<float>((b.data_ptr<double>()[c] + residual_offset) / (units.in_scale * ws[c]));
    }
  }

  at::Tensor run(const at::Tensor& x, const at::Tensor& residual) override {
    const bool sum = units_.residual_scale > 0.0;
    if (!fits(x, units_.in_scale, units_.in_zero_point) || x.size(1) != weight_.size(1) ||
        sum != residual.defined() ||
        (sum && !fits(residual, units_.residual_scale, units_.residual_zero_point)))
      return {};
    const std::lock_guard<std::mutex> lock(mutex_);
    Prepared* p = primitive_for(x.size(0), x.size(2), x.size(3));
    if (p == nullptr) return {};
    const std::vector<int64_t> shape = {x.size(0), weight_.size(0), p->out_h, p->out_w};
    if (sum && residual.sizes() != shape) return {};
    auto y = at::_empty_affine_quantized(shape, x.options().dtype(at::kQUInt8), units_.out_scale,
                                         units_.out_zero_point, at::MemoryFormat::ChannelsLast);
    // The sum post-op adds what the output buffer holds: the residual's codes.
    if (sum) std::memcpy(y.data_ptr(), residual.data_ptr(), static_cast<size_t>(residual.numel()));
    // The memory objects are built once per primitive; a call only points them at its buffers.
    p->src_memory.set_data_handle(x.data_ptr());
    p->dst_memory.set_data_handle(y.data_ptr());
    try {
      p->primitive.execute(stream_, p->args);
      stream_.wait();
    } catch (const dnnl::error& e) {
      throw std::runtime_error(std::string("int8 convolution: oneDNN failed: ") + e.what());
    }
    return y;
  }

 private:
  static bool fits(const at::Tensor& t, double scale, int64_t zero_point) {
    return t.dim() == 4 && t.scalar_type() == at::kQUInt8 && t.qscheme() == at::kPerTensorAffine &&
           t.is_contiguous(at::MemoryFormat::ChannelsLast) && t.q_zero_point() == zero_point &&
           t.q_scale() == scale;
  }

  struct Prepared {
    int64_t n, h, w;
    bool usable;  // false: oneDNN had only a reference kernel (or none) for this size
    int64_t out_h, out_w;
    dnnl::memory src_memory, dst_memory;  // no buffer of their own: set per call
    dnnl::convolution_forward primitive;
    std::unordered_map<int, dnnl::memory> args;  // src, weights (reordered once), bias, dst, zero point
  };

  // One primitive per input size (a model sees one or two); weights reordered once for each.
  // nullptr where oneDNN offers no optimized kernel (a reference kernel would be far slower than
  // quantized::conv2d's): the caller's path for that size from then on.
  Prepared* primitive_for(int64_t n, int64_t h, int64_t w) {
    for (auto& p : prepared_)
      if (p.n == n && p.h == h && p.w == w) return p.usable ? &p : nullptr;
    if (prepared_.size() >= kMaxSizes) prepared_.erase(prepared_.begin());  // many sizes: keep the newest
    try {
      prepared_.push_back(build(n, h, w));
    } catch (const std::exception&) {  // dnnl::error, or a reference kernel
      prepared_.push_back({n, h, w, false, 0, 0, {}, {}, {}, {}});
    }
    return prepared_.back().usable ? &prepared_.back() : nullptr;
  }

  Prepared build(int64_t n, int64_t h, int64_t w) {
    using dnnl::memory;
    const auto s8 = memory::data_type::s8;
    const auto conv = models::nhwc_conv(n, h, w, weight_.sizes().vec(), bias_.defined(), stride_, padding_,
                                        dilation_, memory::data_type::u8, s8);
    dnnl::primitive_attr attr;
    attr.set_output_scales(/*mask: per output channel*/ 1 << 1, output_scales_);
    attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});  // as ATen's path: set per call
    attr.set_zero_points(DNNL_ARG_DST, 0, {static_cast<int32_t>(units_.out_zero_point)});
    dnnl::post_ops ops;
    // In the output's units: + residual_scale / out_scale * residual (its zero point is in the bias),
    // then ReLU.
    if (units_.residual_scale > 0.0)
      ops.append_sum(static_cast<float>(units_.residual_scale / units_.out_scale));
    if (units_.relu) ops.append_eltwise(1.0F, dnnl::algorithm::eltwise_relu, 0.0F, 0.0F);
    attr.set_post_ops(ops);
    // A small layer at batch 1 is built for one thread: oneDNN's own split of it between threads
    // (an OpenMP region per call) made int8 at batch 1 slower on two threads than on one
    // (docs/performance.md, round ten).
    const models::OneThreadBuild one_thread(
        n == 1 &&
        models::conv_flops_per_image(weight_.numel(), conv.out_h, conv.out_w) < models::kSmallLayerFlops);
    const dnnl::convolution_forward::primitive_desc pd(conv.desc, attr, engine_);
    if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) throw std::runtime_error("a reference kernel");
    memory user_weights({conv.weight_dims, s8, memory::format_tag::oihw}, engine_, weight_.data_ptr());
    memory weights(pd.weights_desc(), engine_);
    dnnl::reorder(user_weights, weights).execute(stream_, user_weights, weights);
    stream_.wait();
    const memory src_memory(conv.src, engine_, DNNL_MEMORY_NONE),
        dst_memory(conv.dst, engine_, DNNL_MEMORY_NONE);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_memory},
        {DNNL_ARG_WEIGHTS, weights},
        {DNNL_ARG_DST, dst_memory},
        {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC,
         memory({{1}, memory::data_type::s32, memory::format_tag::x}, engine_, &in_zero_point_)}};
    if (bias_.defined()) args.emplace(DNNL_ARG_BIAS, memory(conv.bias, engine_, bias_.data_ptr<float>()));
    return {n,
            h,
            w,
            true,
            conv.out_h,
            conv.out_w,
            src_memory,
            dst_memory,
            dnnl::convolution_forward(pd),
            std::move(args)};
  }

  static constexpr size_t kMaxSizes = 8;
  at::Tensor weight_, bias_;  // int8 [C_out, C_in, kh, kw]; float bias in accumulator units
  std::vector<float> output_scales_;
  std::vector<int64_t> stride_, padding_, dilation_;
  Int8ConvUnits units_;
  int32_t in_zero_point_;  // the runtime zero point's buffer
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::mutex mutex_;
  std::vector<Prepared> prepared_;
};

}  // namespace

std::unique_ptr<PreparedConv> PreparedConv::create(const at::Tensor& qweight, const at::Tensor& bias,
                                                   std::vector<int64_t> stride, std::vector<int64_t> padding,
                                                   std::vector<int64_t> dilation, int64_t groups,
                                                   const Int8ConvUnits& u) {
  const auto code = [](int64_t zero_point) { return zero_point >= 0 && zero_point <= 255; };
  if (!prepared_int8_convs_enabled() || groups != 1 || qweight.dim() != 4 || !qweight.device().is_cpu() ||
      qweight.scalar_type() != at::kQInt8 || qweight.qscheme() != at::kPerChannelAffine ||
      qweight.q_per_channel_axis() != 0 || qweight.q_per_channel_zero_points().ne(0).any().item<bool>() ||
      stride.size() != 2 || padding.size() != 2 || dilation.size() != 2 || u.in_scale <= 0.0 ||
      u.out_scale <= 0.0 || !code(u.in_zero_point) || !code(u.out_zero_point) || u.residual_scale < 0.0 ||
      !code(u.residual_zero_point) ||
      (bias.defined() && (bias.numel() != qweight.size(0) || !bias.is_floating_point())))
    return nullptr;
  return std::make_unique<DnnlInt8Conv>(qweight, bias, std::move(stride), std::move(padding),
                                        std::move(dilation), u);
}

#else

bool prepared_int8_convs_enabled() {
  return false;
}

bool fused_int8_adds_enabled() {
  return false;
}

std::unique_ptr<PreparedConv> PreparedConv::create(const at::Tensor&, const at::Tensor&, std::vector<int64_t>,
                                                   std::vector<int64_t>, std::vector<int64_t>, int64_t,
                                                   const Int8ConvUnits&) {
  return nullptr;
}

#endif

}  // namespace rla::inference::int8
