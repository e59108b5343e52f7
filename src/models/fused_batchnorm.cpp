#include "rla/models/fused_batchnorm.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "rla/models/op_counter.h"
#include "rla/util/env.h"

namespace rla::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::atomic<bool>& fusion_switch() {
  static std::atomic<bool> enabled = util::env_switch_on("RLA_FUSED_TRAIN");
  return enabled;
}

// Tensors are channels-last [N, C, H, W]: `pixels` rows of C contiguous floats. Sums over pixels
// run in blocks of this many rows, in float within a block and in double across blocks.
constexpr int64_t kRowsPerBlock = 1024;

int64_t block_count(int64_t pixels) {
  return (pixels + kRowsPerBlock - 1) / kRowsPerBlock;
}

// Runs body(first_row, end_row, partial sums of 2C floats) for every block, in parallel.
template <typename Body>
std::vector<float> for_each_block(int64_t pixels, int64_t channels, const Body& body) {
  std::vector<float> part(static_cast<size_t>(block_count(pixels) * 2 * channels), 0.0f);
  at::parallel_for(0, block_count(pixels), 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      body(b * kRowsPerBlock, std::min(pixels, (b + 1) * kRowsPerBlock), part.data() + b * 2 * channels);
  });
  return part;
}

// The two per-channel sums of every block, added in double.
std::pair<std::vector<double>, std::vector<double>> reduce_blocks(const std::vector<float>& part,
                                                                  int64_t channels) {
  std::vector<double> first(channels, 0.0), second(channels, 0.0);
  for (size_t b = 0; b < part.size(); b += 2 * channels) {
    for (int64_t c = 0; c < channels; ++c) {
      first[c] += part[b + c];
      second[c] += part[b + channels + c];
    }
  }
  return {std::move(first), std::move(second)};
}

// g * d act(z) / dz, from the activation's output (branch-free, so that the loops vectorise).
template <Activation kAct>
inline float act_grad(float g, float out) {
  if constexpr (kAct == Activation::kRelu) return out > 0.0f ? g : 0.0f;
  if constexpr (kAct == Activation::kTanh) return g * (1.0f - out * out);
  return g;
}

// Each pass is a function over `rows` rows of C channels whose pointers are __restrict__ (no
// tensor aliases another), so that the compiler vectorises along the channels, called on blocks
// of rows in parallel.

// Forward pass 1: s = x (+ pre, written to s) and the channel sums of (s - pivot) and its square
// (the pivot, the first row, keeps E[d^2] - E[d]^2 away from cancellation).
template <bool kPre>
void stats_rows(const float* __restrict__ x, const float* __restrict__ pre, float* __restrict__ s,
                const float* __restrict__ pivot, int64_t rows, int64_t ch, float* __restrict__ sums,
                float* __restrict__ squares) {
  for (int64_t row = 0; row < rows * ch; row += ch) {
    for (int64_t c = 0; c < ch; ++c) {
      float v = x[row + c];
      if constexpr (kPre) {
        v += pre[row + c];
        s[row + c] = v;
      }
      const float d = v - pivot[c];
      sums[c] += d;
      squares[c] += d * d;
    }
  }
}

// Forward pass 2: out = act(s * scale + shift (+ post)); tanh is left to ATen's vectorised kernel.
template <bool kPost, Activation kAct>
void output_rows(const float* __restrict__ s, const float* __restrict__ post, float* __restrict__ out,
                 const float* __restrict__ scale, const float* __restrict__ shift, int64_t rows, int64_t ch) {
  for (int64_t row = 0; row < rows * ch; row += ch) {
    for (int64_t c = 0; c < ch; ++c) {
      float z = s[row + c] * scale[c] + shift[c];
      if constexpr (kPost) z += post[row + c];
      if constexpr (kAct == Activation::kRelu) z = z > 0.0f ? z : 0.0f;
      out[row + c] = z;
    }
  }
}

// Backward pass 1: gz = g act'(out) (written to gz when an addend after the BN needs it) and the
// channel sums of gz and of gz (s - mean).
template <Activation kAct, bool kWriteGz>
void grad_sums_rows(const float* __restrict__ g, const float* __restrict__ out, const float* __restrict__ s,
                    const float* __restrict__ mean, float* __restrict__ gz_out, int64_t rows, int64_t ch,
                    float* __restrict__ sums, float* __restrict__ centered) {
  for (int64_t row = 0; row < rows * ch; row += ch) {
    for (int64_t c = 0; c < ch; ++c) {
      const float gz = act_grad<kAct>(g[row + c], out[row + c]);
      if constexpr (kWriteGz) gz_out[row + c] = gz;
      sums[c] += gz;
      centered[c] += gz * (s[row + c] - mean[c]);
    }
  }
}

// Backward pass 2: d s = a gz + b s + e per channel (BatchNorm's input gradient); gz read back
// when pass 1 wrote it, else recomputed from g and out.
template <Activation kAct, bool kReadGz>
void grad_input_rows(const float* __restrict__ g, const float* __restrict__ out,
                     const float* __restrict__ gz_in, const float* __restrict__ s,
                     const float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ e,
                     float* __restrict__ grad, int64_t rows, int64_t ch) {
  for (int64_t row = 0; row < rows * ch; row += ch) {
    for (int64_t c = 0; c < ch; ++c) {
      float gz;
      if constexpr (kReadGz) {
        gz = gz_in[row + c];
      } else {
        gz = act_grad<kAct>(g[row + c], out[row + c]);
      }
      grad[row + c] = a[c] * gz + b[c] * s[row + c] + e[c];
    }
  }
}

// The passes over every row: blocks of rows in parallel; sums per block (see for_each_block).
const float* at_row(const float* p, int64_t row, int64_t ch) {
  return p == nullptr ? nullptr : p + row * ch;
}
float* at_row(float* p, int64_t row, int64_t ch) {
  return p == nullptr ? nullptr : p + row * ch;
}

template <bool kPre>
std::vector<float> stats_pass(const float* x, const float* pre, float* s, const float* pivot, int64_t pixels,
                              int64_t ch) {
  return for_each_block(pixels, ch, [=](int64_t p0, int64_t p1, float* sums) {
    stats_rows<kPre>(at_row(x, p0, ch), at_row(pre, p0, ch), at_row(s, p0, ch), pivot, p1 - p0, ch, sums,
                     sums + ch);
  });
}

template <bool kPost, Activation kAct>
void output_pass(const float* s, const float* post, float* out, const float* scale, const float* shift,
                 int64_t pixels, int64_t ch) {
  at::parallel_for(0, pixels, kRowsPerBlock, [=](int64_t p0, int64_t p1) {
    output_rows<kPost, kAct>(at_row(s, p0, ch), at_row(post, p0, ch), at_row(out, p0, ch), scale, shift,
                             p1 - p0, ch);
  });
}

template <Activation kAct, bool kWriteGz>
std::vector<float> grad_sums_pass(const float* g, const float* out, const float* s, const float* mean,
                                  float* gz_out, int64_t pixels, int64_t ch) {
  return for_each_block(pixels, ch, [=](int64_t p0, int64_t p1, float* sums) {
    grad_sums_rows<kAct, kWriteGz>(at_row(g, p0, ch), at_row(out, p0, ch), at_row(s, p0, ch), mean,
                                   at_row(gz_out, p0, ch), p1 - p0, ch, sums, sums + ch);
  });
}

template <Activation kAct, bool kReadGz>
void grad_input_pass(const float* g, const float* out, const float* gz_in, const float* s, const float* a,
                     const float* b, const float* e, float* grad, int64_t pixels, int64_t ch) {
  at::parallel_for(0, pixels, kRowsPerBlock, [=](int64_t p0, int64_t p1) {
    grad_input_rows<kAct, kReadGz>(at_row(g, p0, ch), at_row(out, p0, ch), at_row(gz_in, p0, ch),
                                   at_row(s, p0, ch), a, b, e, at_row(grad, p0, ch), p1 - p0, ch);
  });
}

// A per-channel vector as a float tensor [C].
torch::Tensor channel_tensor(std::vector<double> v) {
  return torch::from_blob(v.data(), {static_cast<int64_t>(v.size())}, torch::kDouble).to(torch::kFloat);
}

float* ptr(const torch::Tensor& t) {
  return t.defined() ? t.data_ptr<float>() : nullptr;
}

// The passes that depend on the activation and on an addend after the BN, chosen at run time.
template <bool kPost>
void output_for(Activation act, const float* s, const float* post, float* out, const float* scale,
                const float* shift, int64_t pixels, int64_t ch) {
  if (act == Activation::kRelu)
    return output_pass<kPost, Activation::kRelu>(s, post, out, scale, shift, pixels, ch);
  if (act == Activation::kTanh)
    return output_pass<kPost, Activation::kTanh>(s, post, out, scale, shift, pixels, ch);
  output_pass<kPost, Activation::kNone>(s, post, out, scale, shift, pixels, ch);
}

template <bool kPost>
std::vector<float> grad_sums_for(Activation act, const float* g, const float* out, const float* s,
                                 const float* mean, float* gz, int64_t pixels, int64_t ch) {
  if (act == Activation::kRelu)
    return grad_sums_pass<Activation::kRelu, kPost>(g, out, s, mean, gz, pixels, ch);
  if (act == Activation::kTanh)
    return grad_sums_pass<Activation::kTanh, kPost>(g, out, s, mean, gz, pixels, ch);
  return grad_sums_pass<Activation::kNone, kPost>(g, out, s, mean, gz, pixels, ch);
}

template <bool kPost>
void grad_input_for(Activation act, const float* g, const float* out, const float* gz, const float* s,
                    const float* a, const float* b, const float* e, float* grad, int64_t pixels, int64_t ch) {
  if (act == Activation::kRelu)
    return grad_input_pass<Activation::kRelu, kPost>(g, out, gz, s, a, b, e, grad, pixels, ch);
  if (act == Activation::kTanh)
    return grad_input_pass<Activation::kTanh, kPost>(g, out, gz, s, a, b, e, grad, pixels, ch);
  grad_input_pass<Activation::kNone, kPost>(g, out, gz, s, a, b, e, grad, pixels, ch);
}

// act(batch_norm(x + pre) + post) with batch statistics as one node. Saved: s (= x without pre),
// the output, mean, 1 / std and gamma.
class FusedBatchNormAct : public torch::autograd::Function<FusedBatchNormAct> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& pre,
                               const torch::Tensor& post, const torch::Tensor& weight,
                               const torch::Tensor& bias, torch::Tensor running_mean,
                               torch::Tensor running_var, double eps, double momentum, int64_t activation) {
    const auto act = static_cast<Activation>(activation);
    const int64_t ch = x.size(1), pixels = x.numel() / ch;
    TORCH_CHECK(pixels > 1, "BatchNorm needs more than one value per channel in training, got ", x.sizes());
    const bool has_pre = pre.numel() > 0, has_post = post.numel() > 0;  // absent: empty (see apply)
    const auto s = has_pre ? torch::empty_like(x, at::MemoryFormat::ChannelsLast) : x;
    std::vector<float> pivot(ch);
    for (int64_t c = 0; c < ch; ++c) pivot[c] = ptr(x)[c] + (has_pre ? ptr(pre)[c] : 0.0f);
    const auto part = has_pre ? stats_pass<true>(ptr(x), ptr(pre), ptr(s), pivot.data(), pixels, ch)
                              : stats_pass<false>(ptr(x), nullptr, nullptr, pivot.data(), pixels, ch);
    const auto [s1, s2] = reduce_blocks(part, ch);

    const auto n = static_cast<double>(pixels);
    const auto w = weight.detach().to(torch::kDouble).contiguous();
    const auto bi = bias.detach().to(torch::kDouble).contiguous();
    std::vector<double> mean(ch), var(ch), invstd(ch);
    std::vector<float> scale(ch), shift(ch);
    for (int64_t c = 0; c < ch; ++c) {
      const double m = s1[c] / n;
      mean[c] = pivot[c] + m;
      var[c] = std::max(0.0, s2[c] / n - m * m);
      invstd[c] = 1.0 / std::sqrt(var[c] + eps);
      const double a = w.data_ptr<double>()[c] * invstd[c];
      scale[c] = static_cast<float>(a);
      shift[c] = static_cast<float>(bi.data_ptr<double>()[c] - mean[c] * a);
    }
    auto out = torch::empty_like(s, at::MemoryFormat::ChannelsLast);
    if (has_post) {
      output_for<true>(act, ptr(s), ptr(post), ptr(out), scale.data(), shift.data(), pixels, ch);
    } else {
      output_for<false>(act, ptr(s), nullptr, ptr(out), scale.data(), shift.data(), pixels, ch);
    }
    if (act == Activation::kTanh) out.tanh_();

    {
      torch::NoGradGuard no_grad;
      std::vector<double> unbiased(ch);
      for (int64_t c = 0; c < ch; ++c) unbiased[c] = var[c] * n / (n - 1.0);
      running_mean.mul_(1.0 - momentum).add_(channel_tensor(mean).to(running_mean.options()), momentum);
      running_var.mul_(1.0 - momentum).add_(channel_tensor(unbiased).to(running_var.options()), momentum);
    }
    ctx->save_for_backward({s, out, channel_tensor(mean), channel_tensor(invstd), weight});
    ctx->saved_data["activation"] = activation;
    ctx->saved_data["pre"] = has_pre;
    ctx->saved_data["post"] = has_post;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& s = saved[0];
    const auto& out = saved[1];
    const auto& mean = saved[2];
    const auto& invstd = saved[3];
    const auto w = saved[4].detach().to(torch::kFloat).contiguous();
    const auto act = static_cast<Activation>(ctx->saved_data["activation"].toInt());
    const bool has_pre = ctx->saved_data["pre"].toBool(), has_post = ctx->saved_data["post"].toBool();
    const auto g = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    const int64_t ch = s.size(1), pixels = s.numel() / ch;

    torch::Tensor gz = has_post ? torch::empty_like(s, at::MemoryFormat::ChannelsLast) : torch::Tensor();
    const auto part =
        has_post ? grad_sums_for<true>(act, ptr(g), ptr(out), ptr(s), ptr(mean), ptr(gz), pixels, ch)
                 : grad_sums_for<false>(act, ptr(g), ptr(out), ptr(s), ptr(mean), nullptr, pixels, ch);
    const auto [dbeta, centered] = reduce_blocks(part, ch);

    // d s = gamma invstd (gz - dbeta / n - xhat dgamma / n), xhat = (s - mean) invstd and
    // dgamma = sum(gz xhat) = invstd * centered; written as a gz + b s + e per channel.
    const auto n = static_cast<double>(pixels);
    std::vector<float> a(ch), b(ch), e(ch);
    std::vector<double> dgamma(ch);
    for (int64_t c = 0; c < ch; ++c) {
      const double is = ptr(invstd)[c];
      dgamma[c] = centered[c] * is;
      const double ac = w.data_ptr<float>()[c] * is;
      const double bc = -ac * is * dgamma[c] / n;
      a[c] = static_cast<float>(ac);
      b[c] = static_cast<float>(bc);
      e[c] = static_cast<float>(-ac * dbeta[c] / n - bc * ptr(mean)[c]);
    }
    auto grad = torch::empty_like(s, at::MemoryFormat::ChannelsLast);
    if (has_post) {
      grad_input_for<true>(act, ptr(g), ptr(out), ptr(gz), ptr(s), a.data(), b.data(), e.data(), ptr(grad),
                           pixels, ch);
    } else {
      grad_input_for<false>(act, ptr(g), ptr(out), nullptr, ptr(s), a.data(), b.data(), e.data(), ptr(grad),
                            pixels, ch);
    }
    const auto& options = saved[4].options();
    return {grad,
            has_pre ? grad : torch::Tensor(),
            gz,
            channel_tensor(dgamma).to(options),
            channel_tensor(dbeta).to(options),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

bool channels_last_float_cpu(const torch::Tensor& t) {
  return t.defined() && t.dim() == 4 && t.is_cpu() && t.scalar_type() == torch::kFloat &&
         t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

bool fits(const torch::Tensor& addend, const torch::Tensor& x) {
  return !addend.defined() || (channels_last_float_cpu(addend) && addend.sizes() == x.sizes());
}

}  // namespace

bool batch_norm_act_fusable(const torch::Tensor& x, const BatchNorm2dImpl& bn, const BatchNormAct& with) {
  return batch_norm_fusion() && bn.is_training() && !bn.folded && bn.weight.defined() && bn.bias.defined() &&
         active_counter() == nullptr && channels_last_float_cpu(x) && x.size(1) == bn.channels &&
         fits(with.add_before, x) && fits(with.add_after, x);
}

torch::Tensor batch_norm_act(const torch::Tensor& x, BatchNorm2dImpl& bn, const BatchNormAct& with) {
  if (!batch_norm_act_fusable(x, bn, with)) {
    auto z = bn.forward(with.add_before.defined() ? x + with.add_before : x);
    if (with.add_after.defined()) z = z + with.add_after;
    if (with.activation == Activation::kRelu) return z.relu_();
    if (with.activation == Activation::kTanh) return z.tanh_();
    return z;
  }
  {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked.add_(1);
  }
  // An absent addend goes in as an empty tensor: autograd's custom functions take no undefined one.
  auto present = [&](const torch::Tensor& t) { return t.defined() ? t : x.new_empty({0}); };
  return FusedBatchNormAct::apply(x, present(with.add_before), present(with.add_after), bn.weight, bn.bias,
                                  bn.running_mean, bn.running_var, bn.eps, bn.momentum,
                                  static_cast<int64_t>(with.activation));
}

void set_batch_norm_fusion(bool enabled) {
  fusion_switch() = enabled;
}

bool batch_norm_fusion() {
  return fusion_switch();
}

}  // namespace rla::models
