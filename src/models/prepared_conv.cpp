#include "prepared_conv.h"

#include "rla/models/band_team.h"
#include "rla/util/env.h"

#include <cstring>
#include <mutex>

#include <ATen/Parallel.h>

#include <algorithm>
#include <stdexcept>

#include "rla/config.h"

#if defined(RLA_HAVE_DNNL)
#include <dnnl.hpp>
#endif

#if defined(RLA_HAVE_DNNL) && DNNL_VERSION_MAJOR == 2
#include "onednn_conv.h"
#endif

namespace rla::models {

bool fused_post_ops_enabled() {
  static const bool enabled = util::env_switch_on("RLA_FUSED_POST_OPS");
  return enabled;
}

#if defined(RLA_HAVE_DNNL) && DNNL_VERSION_MAJOR == 2
bool prepared_convs_enabled() {
  static const bool enabled = util::env_switch_on("RLA_PREPARED_CONV");
  return enabled;
}

namespace {

// RLA_SPLIT_ROWS=0 runs batch-1 convolutions as one multi-threaded primitive (A/B runs).
bool split_rows_enabled() {
  static const bool enabled = util::env_switch_on("RLA_SPLIT_ROWS");
  return enabled;
}

// RLA_SUBSAMPLE_1X1=0 runs strided 1x1 convolutions on the full input (A/B runs).
bool subsample_enabled() {
  static const bool enabled = util::env_switch_on("RLA_SUBSAMPLE_1X1");
  return enabled;
}

/// x [N, C, H, W] channels-last float -> x[:, :, ::sh, ::sw], channels-last: the pixels a 1x1
/// convolution of that stride reads, row by row. oneDNN 2.6's channels-last 1x1 kernel runs a
/// strided 1x1 convolution about 1.5x slower than a stride-1 one on this copy (resnet50's 512 ->
/// 1024 downsample at batch 32: 26.7 vs 17.4 ms with the copy; docs/performance.md, round eight).
torch::Tensor subsample(const torch::Tensor& x, int64_t sh, int64_t sw) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t oh = (h - 1) / sh + 1, ow = (w - 1) / sw + 1;
  auto y = torch::empty({n, c, oh, ow}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* src = x.data_ptr<float>();
  float* dst = y.data_ptr<float>();
  at::parallel_for(0, n * oh, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* in = src + ((r / oh) * h + (r % oh) * sh) * w * c;
      float* out = dst + r * ow * c;
      for (int64_t j = 0; j < ow; ++j) std::memcpy(out + j * c, in + j * sw * c, c * sizeof(float));
    }
  });
  return y;
}

class DnnlConv : public PreparedConv {
 public:
  DnnlConv(const torch::Tensor& weight, const torch::Tensor& bias, std::vector<int64_t> stride,
           std::vector<int64_t> padding, std::vector<int64_t> dilation)
      : weight_(weight.detach().contiguous()),
        bias_(bias.defined() ? bias.detach().contiguous() : torch::Tensor()),
        stride_(std::move(stride)),
        padding_(std::move(padding)),
        dilation_(std::move(dilation)),
        engine_(dnnl::engine::kind::cpu, 0),
        stream_(engine_) {
    // A strided 1x1 convolution without padding: a stride-1 primitive on the subsampled input.
    if (subsample_enabled() && weight_.size(2) == 1 && weight_.size(3) == 1 && padding_[0] == 0 &&
        padding_[1] == 0 && dilation_[0] == 1 && dilation_[1] == 1 && (stride_[0] > 1 || stride_[1] > 1)) {
      subsample_ = stride_;
      stride_ = {1, 1};
    }
  }

  torch::Tensor run(const torch::Tensor& input, const ConvEpilogue& e) override {
    if (input.dim() != 4 || input.size(1) != weight_.size(1)) return {};
    if (!subsample_.empty() && !input.is_contiguous(at::MemoryFormat::ChannelsLast)) return {};
    const bool sum = e.sum_into.defined(), affine = e.scale.defined();
    if (sum && !(e.sum_into.scalar_type() == torch::kFloat && e.sum_into.device().is_cpu() &&
                 e.sum_into.is_contiguous(at::MemoryFormat::ChannelsLast)))
      return {};
    if (affine &&
        !(e.shift.defined() && e.scale.numel() == weight_.size(0) && e.shift.numel() == weight_.size(0) &&
          e.scale.scalar_type() == torch::kFloat && e.shift.scalar_type() == torch::kFloat))
      return {};
    if (e.relu && e.tanh) return {};
    const auto x = subsample_.empty() ? input : subsample(input, subsample_[0], subsample_[1]);
    const int ops = (e.relu ? kRelu : 0) | (sum ? kSum : 0) | (affine ? kAffine : 0) | (e.tanh ? kTanh : 0);
    const std::lock_guard<std::mutex> lock(mutex_);
    auto& p = primitive_for(x.size(0), x.size(2), x.size(3), ops);
    const std::vector<int64_t> shape = {x.size(0), weight_.size(0), p.whole.out_h, p.whole.out_w};
    if (sum && e.sum_into.sizes() != shape) return {};
    auto y =
        sum ? e.sum_into : torch::empty(shape, x.options().memory_format(at::MemoryFormat::ChannelsLast));
    torch::Tensor scale, shift;  // kept alive for the call
    if (affine) {
      scale = e.scale.contiguous();
      shift = e.shift.contiguous();
    }
    const auto* src = x.data_ptr<float>();
    auto* dst = y.data_ptr<float>();
    if (p.bands.empty()) {
      if (at::get_num_threads() > 1) note_unbanded_call();
      bind(p.whole, src, dst, scale, shift);
      p.whole.primitive.execute(stream_, p.whole.args);
      stream_.wait();
      return y;
    }
    // Batch 1 on a small map: one band of output rows per thread, each a single-threaded primitive.
    const int64_t in_row = x.size(3) * x.size(1), out_row = p.whole.out_w * weight_.size(0);
    for (auto& b : p.bands) bind(b.unit, src + b.in_row0 * in_row, dst + b.out_row0 * out_row, scale, shift);
    // On the forward's band team where there is one (models/band_team.h), else an OpenMP region.
    run_bands(static_cast<int>(p.bands.size()), [&p](int t) {
      auto& b = p.bands[t];
      b.unit.primitive.execute(b.stream, b.unit.args);
      b.stream.wait();
    });
    return y;
  }

 private:
  static constexpr int kRelu = 1, kSum = 2, kAffine = 4, kTanh = 8;  // fused post-ops
  // One oneDNN primitive and its memory objects (no buffers of their own: set per call).
  struct Unit {
    int64_t out_h, out_w;
    dnnl::memory src_memory, dst_memory;
    dnnl::memory scale_memory, shift_memory;  // kAffine: the per-channel vectors
    dnnl::convolution_forward primitive;
    std::unordered_map<int, dnnl::memory> args;  // src, weights (reordered once), bias, dst
  };
  // A band of output rows from out_row0 on, computed from input rows from in_row0 on.
  struct Band {
    Unit unit;
    int64_t in_row0, out_row0;
    dnnl::stream stream;
  };
  struct Prepared {
    int64_t n, h, w;
    int post_ops;
    Unit whole;
    std::vector<Band> bands;  // batch 1 on a small map with several threads: one band per thread
  };

  static void bind(Unit& u, const float* src, float* dst, const torch::Tensor& scale,
                   const torch::Tensor& shift) {
    u.src_memory.set_data_handle(const_cast<float*>(src));
    u.dst_memory.set_data_handle(dst);
    if (scale.defined()) {
      u.scale_memory.set_data_handle(scale.data_ptr<float>());
      u.shift_memory.set_data_handle(shift.data_ptr<float>());
    }
  }

  // One primitive per input size and post-ops (a model sees one or two); weights reordered once
  // for each.
  Prepared& primitive_for(int64_t n, int64_t h, int64_t w, int post_ops) {
    for (auto& p : prepared_)
      if (p.n == n && p.h == h && p.w == w && p.post_ops == post_ops) return p;
    if (prepared_.size() >= kMaxSizes) prepared_.erase(prepared_.begin());  // many sizes: keep the newest
    Prepared p{n, h, w, post_ops, build(n, h, w, post_ops, padding_[0], padding_[0]), {}};
    split_rows(p);
    prepared_.push_back(std::move(p));
    return prepared_.back();
  }

  // At batch 1 oneDNN splits a small convolution poorly between threads; where the work per image
  // is small (under kSmallLayerFlops) and several threads run, each thread computes a band of output
  // rows with a primitive built for one thread (docs/performance.md, round eight).
  void split_rows(Prepared& p) {
    const int threads = at::get_num_threads();
    const int64_t kh = weight_.size(2), out_h = p.whole.out_h;
    if (!split_rows_enabled() || p.n != 1 || threads < 2 || out_h < 2 * threads ||
        conv_flops_per_image(weight_.numel(), out_h, p.whole.out_w) > kSmallLayerFlops)
      return;
    const OneThreadBuild one_thread(true);  // the bands' primitives each run on one thread
    try {
      for (int t = 0; t < threads; ++t) {
        const int64_t r0 = out_h * t / threads, r1 = out_h * (t + 1) / threads;
        // Input rows the band reads, with the image's padding where they fall outside it.
        const int64_t first = r0 * stride_[0] - padding_[0];
        const int64_t last = (r1 - 1) * stride_[0] - padding_[0] + dilation_[0] * (kh - 1);
        const int64_t in0 = std::max<int64_t>(first, 0), in1 = std::min<int64_t>(last, p.h - 1);
        Band b{build(1, in1 - in0 + 1, p.w, p.post_ops, in0 - first, last - in1), in0, r0,
               dnnl::stream(engine_)};
        if (b.unit.out_h != r1 - r0 || b.unit.out_w != p.whole.out_w) throw std::logic_error("band size");
        p.bands.push_back(std::move(b));
      }
    } catch (const std::exception&) {
      p.bands.clear();  // no band primitive here: the whole one
    }
  }

  Unit build(int64_t n, int64_t h, int64_t w, int post_ops, int64_t pad_top, int64_t pad_bottom) {
    using dnnl::memory;
    const auto f32 = memory::data_type::f32;
    const std::vector<int64_t> padding = {pad_top, padding_[1]};
    const auto conv = nhwc_conv(n, h, w, weight_.sizes().vec(), bias_.defined(), stride_, padding, dilation_,
                                f32, f32, pad_bottom);
    dnnl::post_ops ops;
    const memory::desc per_channel({1, weight_.size(0), 1, 1}, f32, memory::format_tag::nchw);
    int binary_index = -1;  // position of the first binary post-op in the chain
    if ((post_ops & kSum) != 0) ops.append_sum(1.0F);
    if ((post_ops & kAffine) != 0) {
      binary_index = ops.len();
      ops.append_binary(dnnl::algorithm::binary_mul, per_channel);
      ops.append_binary(dnnl::algorithm::binary_add, per_channel);
    }
    if ((post_ops & kRelu) != 0) ops.append_eltwise(1.0F, dnnl::algorithm::eltwise_relu, 0.0F, 0.0F);
    if ((post_ops & kTanh) != 0) ops.append_eltwise(1.0F, dnnl::algorithm::eltwise_tanh, 0.0F, 0.0F);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    const dnnl::convolution_forward::primitive_desc pd(conv.desc, attr, engine_);
    memory user_weights({conv.weight_dims, f32, memory::format_tag::oihw}, engine_,
                        weight_.data_ptr<float>());
    memory weights(pd.weights_desc(), engine_);
    dnnl::reorder(user_weights, weights).execute(stream_, user_weights, weights);
    stream_.wait();
    const memory src_memory(conv.src, engine_, DNNL_MEMORY_NONE),
        dst_memory(conv.dst, engine_, DNNL_MEMORY_NONE);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_memory}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst_memory}};
    if (bias_.defined()) args.emplace(DNNL_ARG_BIAS, memory(conv.bias, engine_, bias_.data_ptr<float>()));
    memory scale_memory, shift_memory;
    if (binary_index >= 0) {
      scale_memory = memory(per_channel, engine_, DNNL_MEMORY_NONE);
      shift_memory = memory(per_channel, engine_, DNNL_MEMORY_NONE);
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(binary_index) | DNNL_ARG_SRC_1, scale_memory);
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(binary_index + 1) | DNNL_ARG_SRC_1, shift_memory);
    }
    return {conv.out_h,
            conv.out_w,
            src_memory,
            dst_memory,
            scale_memory,
            shift_memory,
            dnnl::convolution_forward(pd),
            std::move(args)};
  }

  static constexpr size_t kMaxSizes = 8;
  torch::Tensor weight_, bias_;
  std::vector<int64_t> stride_, padding_, dilation_;
  std::vector<int64_t> subsample_;  // a strided 1x1 convolution's stride, run as subsample + stride 1
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::mutex mutex_;
  std::vector<Prepared> prepared_;
};

}  // namespace

std::shared_ptr<PreparedConv> PreparedConv::create(const torch::Tensor& weight, const torch::Tensor& bias,
                                                   std::vector<int64_t> stride, std::vector<int64_t> padding,
                                                   std::vector<int64_t> dilation, int64_t groups) {
  if (!prepared_convs_enabled() || groups != 1 || weight.dim() != 4 || !weight.device().is_cpu() ||
      weight.scalar_type() != torch::kFloat || stride.size() != 2 || padding.size() != 2 ||
      dilation.size() != 2)
    return nullptr;
  return std::make_shared<DnnlConv>(weight, bias, std::move(stride), std::move(padding), std::move(dilation));
}

#else

bool prepared_convs_enabled() {
  return false;
}

std::shared_ptr<PreparedConv> PreparedConv::create(const torch::Tensor&, const torch::Tensor&,
                                                   std::vector<int64_t>, std::vector<int64_t>,
                                                   std::vector<int64_t>, int64_t) {
  return nullptr;
}

#endif

}  // namespace rla::models
