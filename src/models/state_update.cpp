#include "rla/models/state_update.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "rla/models/op_counter.h"

namespace rla::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::atomic<bool>& fusion_switch() {
  static std::atomic<bool> enabled = [] {
    const char* env = std::getenv("RLA_FUSED_STATE_TRAIN");
    return env == nullptr || std::string(env) != "0";
  }();
  return enabled;
}

// The state is a channels-last [N, k, H, W] tensor: `pixels` rows of k contiguous floats. Sums
// over pixels run in blocks of this many rows, in float within a block and in double across.
constexpr int64_t kRowsPerBlock = 1024;

int64_t block_count(int64_t pixels) {
  return (pixels + kRowsPerBlock - 1) / kRowsPerBlock;
}

// Adds each block's two per-channel partial sums (2k floats per block, in `part`) in double.
void reduce_blocks(const std::vector<float>& part, int64_t k, std::vector<double>& first,
                   std::vector<double>& second) {
  first.assign(k, 0.0);
  second.assign(k, 0.0);
  for (size_t b = 0; b < part.size(); b += 2 * k) {
    for (int64_t c = 0; c < k; ++c) {
      first[c] += part[b + c];
      second[c] += part[b + k + c];
    }
  }
}

// Forward pass 1: sum = h + c, and per block the channel sums of (sum - pivot) and its square
// (the pivot, the first row, keeps E[x^2] - E[x]^2 away from cancellation).
void add_and_sum(const float* h, const float* c, float* sum, const float* pivot, int64_t pixels, int64_t k,
                 std::vector<float>& part) {
  at::parallel_for(0, block_count(pixels), 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      float* s1 = part.data() + b * 2 * k;
      float* s2 = s1 + k;
      const int64_t end = std::min(pixels, (b + 1) * kRowsPerBlock);
      for (int64_t p = b * kRowsPerBlock; p < end; ++p) {
        const int64_t row = p * k;
        for (int64_t ch = 0; ch < k; ++ch) {
          const float v = h[row + ch] + c[row + ch];
          sum[row + ch] = v;
          const float d = v - pivot[ch];
          s1[ch] += d;
          s2[ch] += d * d;
        }
      }
    }
  });
}

// out = sum * scale + shift, per channel (tanh follows in ATen's vectorised kernel).
void scale_shift(const float* sum, float* out, const float* scale, const float* shift, int64_t pixels,
                 int64_t k) {
  at::parallel_for(0, pixels, kRowsPerBlock, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t row = p * k;
      for (int64_t ch = 0; ch < k; ++ch) out[row + ch] = sum[row + ch] * scale[ch] + shift[ch];
    }
  });
}

// Backward pass 1: per block the channel sums of gz = g (1 - out^2) and of gz * (sum - mean).
void grad_sums(const float* g, const float* out, const float* sum, const float* mean, int64_t pixels,
               int64_t k, std::vector<float>& part) {
  at::parallel_for(0, block_count(pixels), 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      float* s1 = part.data() + b * 2 * k;
      float* s2 = s1 + k;
      const int64_t end = std::min(pixels, (b + 1) * kRowsPerBlock);
      for (int64_t p = b * kRowsPerBlock; p < end; ++p) {
        const int64_t row = p * k;
        for (int64_t ch = 0; ch < k; ++ch) {
          const float o = out[row + ch];
          const float gz = g[row + ch] * (1.0f - o * o);
          s1[ch] += gz;
          s2[ch] += gz * (sum[row + ch] - mean[ch]);
        }
      }
    }
  });
}

// Backward pass 2: d sum = a * gz + b * sum + e, per channel (BatchNorm's input gradient).
void grad_input(const float* g, const float* out, const float* sum, const float* a, const float* b,
                const float* e, float* grad, int64_t pixels, int64_t k) {
  at::parallel_for(0, pixels, kRowsPerBlock, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t row = p * k;
      for (int64_t ch = 0; ch < k; ++ch) {
        const float o = out[row + ch];
        grad[row + ch] = a[ch] * (g[row + ch] * (1.0f - o * o)) + b[ch] * sum[row + ch] + e[ch];
      }
    }
  });
}

// A per-channel vector as a float tensor [k].
torch::Tensor channel_tensor(std::vector<double> v) {
  return torch::from_blob(v.data(), {static_cast<int64_t>(v.size())}, torch::kDouble).to(torch::kFloat);
}

// tanh(batch_norm(h + c)) with batch statistics, one node. Saved: the sum, the output, mean,
// 1 / std and gamma.
class StateUpdate : public torch::autograd::Function<StateUpdate> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& h, const torch::Tensor& c,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               torch::Tensor running_mean, torch::Tensor running_var, double eps,
                               double momentum) {
    const int64_t k = h.size(1), pixels = h.numel() / k;
    TORCH_CHECK(pixels > 1,
                "the RLA state's BatchNorm needs more than one value per channel in training, got ",
                h.sizes());
    auto sum = torch::empty_like(h, at::MemoryFormat::ChannelsLast);
    std::vector<float> part(static_cast<size_t>(block_count(pixels) * 2 * k), 0.0f);
    const float* hp = h.data_ptr<float>();
    const float* cp = c.data_ptr<float>();
    std::vector<float> pivot(k);
    for (int64_t ch = 0; ch < k; ++ch) pivot[ch] = hp[ch] + cp[ch];
    add_and_sum(hp, cp, sum.data_ptr<float>(), pivot.data(), pixels, k, part);
    std::vector<double> s1, s2;
    reduce_blocks(part, k, s1, s2);

    const auto n = static_cast<double>(pixels);
    std::vector<double> mean(k), var(k), invstd(k);
    for (int64_t ch = 0; ch < k; ++ch) {
      const double m = s1[ch] / n;
      mean[ch] = pivot[ch] + m;
      var[ch] = std::max(0.0, s2[ch] / n - m * m);
      invstd[ch] = 1.0 / std::sqrt(var[ch] + eps);
    }
    const auto w = weight.detach().to(torch::kDouble).contiguous();
    const auto bi = bias.detach().to(torch::kDouble).contiguous();
    std::vector<float> scale(k), shift(k), meanf(k);
    for (int64_t ch = 0; ch < k; ++ch) {
      const double a = w.data_ptr<double>()[ch] * invstd[ch];
      scale[ch] = static_cast<float>(a);
      shift[ch] = static_cast<float>(bi.data_ptr<double>()[ch] - mean[ch] * a);
      meanf[ch] = static_cast<float>(mean[ch]);
    }
    auto out = torch::empty_like(sum);
    scale_shift(sum.data_ptr<float>(), out.data_ptr<float>(), scale.data(), shift.data(), pixels, k);
    out.tanh_();

    {
      torch::NoGradGuard no_grad;
      std::vector<double> unbiased(k);
      for (int64_t ch = 0; ch < k; ++ch) unbiased[ch] = var[ch] * n / (n - 1.0);
      running_mean.mul_(1.0 - momentum).add_(channel_tensor(mean).to(running_mean.options()), momentum);
      running_var.mul_(1.0 - momentum).add_(channel_tensor(unbiased).to(running_var.options()), momentum);
    }
    ctx->save_for_backward({sum, out, channel_tensor(mean), channel_tensor(invstd), weight});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& sum = saved[0];
    const auto& out = saved[1];
    const auto mean = saved[2].contiguous();
    const auto invstd = saved[3].contiguous();
    const auto w = saved[4].detach().to(torch::kFloat).contiguous();
    const auto g = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    const int64_t k = sum.size(1), pixels = sum.numel() / k;

    std::vector<float> part(static_cast<size_t>(block_count(pixels) * 2 * k), 0.0f);
    grad_sums(g.data_ptr<float>(), out.data_ptr<float>(), sum.data_ptr<float>(), mean.data_ptr<float>(),
              pixels, k, part);
    std::vector<double> dbeta, dgz_centered;
    reduce_blocks(part, k, dbeta, dgz_centered);

    // d sum = gamma invstd (gz - dbeta / n - xhat dgamma / n), xhat = (sum - mean) invstd and
    // dgamma = sum(gz xhat) = invstd * dgz_centered; written as a gz + b sum + e per channel.
    const auto n = static_cast<double>(pixels);
    std::vector<float> a(k), b(k), e(k);
    std::vector<double> dgamma(k);
    for (int64_t ch = 0; ch < k; ++ch) {
      const double is = invstd.data_ptr<float>()[ch];
      const double m = mean.data_ptr<float>()[ch];
      dgamma[ch] = dgz_centered[ch] * is;
      const double ac = w.data_ptr<float>()[ch] * is;
      const double bc = -ac * is * dgamma[ch] / n;
      a[ch] = static_cast<float>(ac);
      b[ch] = static_cast<float>(bc);
      e[ch] = static_cast<float>(-ac * dbeta[ch] / n - bc * m);
    }
    auto grad = torch::empty_like(sum);
    grad_input(g.data_ptr<float>(), out.data_ptr<float>(), sum.data_ptr<float>(), a.data(), b.data(),
               e.data(), grad.data_ptr<float>(), pixels, k);
    return {grad,
            grad,
            channel_tensor(dgamma).to(saved[4].options()),
            channel_tensor(dbeta).to(saved[4].options()),
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

}  // namespace

bool state_update_fusable(const torch::Tensor& h, const torch::Tensor& c, const BatchNorm2dImpl& bn) {
  return state_update_fusion() && bn.is_training() && !bn.folded && bn.weight.defined() &&
         bn.bias.defined() && active_counter() == nullptr && channels_last_float_cpu(h) &&
         channels_last_float_cpu(c) && h.sizes() == c.sizes() && h.size(1) == bn.channels;
}

torch::Tensor state_update_fused(const torch::Tensor& h, const torch::Tensor& c, BatchNorm2dImpl& bn) {
  TORCH_CHECK(state_update_fusable(h, c, bn), "state_update_fused: inputs ", h.sizes(), " and ", c.sizes(),
              " do not fit the fused kernel (float, CPU, channels-last, one shape, BN training)");
  {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked.add_(1);
  }
  return StateUpdate::apply(h, c, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.eps, bn.momentum);
}

void set_state_update_fusion(bool enabled) {
  fusion_switch() = enabled;
}

bool state_update_fusion() {
  return fusion_switch();
}

}  // namespace rla::models
