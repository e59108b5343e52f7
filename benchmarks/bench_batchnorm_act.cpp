// The training BatchNorms of resnet20 / rla_resnet20 (batch 128 at 32x32, k = 12) one at a time:
// models::batch_norm_act forward + backward with its surroundings (ReLU, the residual sum, the RLA
// state's add and tanh), fused (one autograd node, the trainer's default) and as the separate ATen
// operations. Median and minimum of `reps` timed runs after two untimed ones; fresh tensors per
// run, as in a step, from a heap kept as the trainer keeps it (util/memory.h). docs/performance.md, round
// twelve.
//   ./build/benchmarks/bench_batchnorm_act [--threads 1] [--batch 128] [--reps 20]
#include <fmt/format.h>
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "rla/models/fused_batchnorm.h"
#include "rla/models/layers.h"
#include "rla/util/memory.h"
#include "support/timing.h"

namespace {

using rla::models::Activation;

struct Case {
  const char* what;
  int64_t channels, size;
  Activation act;
  bool add_before, add_after;
};

const std::vector<Case> kCases = {
    {"conv->BN->ReLU 16 @32", 16, 32, Activation::kRelu, false, false},
    {"BN + identity ->ReLU 16 @32", 16, 32, Activation::kRelu, false, true},
    {"conv->BN->ReLU 32 @16", 32, 16, Activation::kRelu, false, false},
    {"conv->BN->ReLU 64 @8", 64, 8, Activation::kRelu, false, false},
    {"state tanh(BN(h + u)) 12 @32", 12, 32, Activation::kTanh, true, false},
    {"state tanh(BN(h + u)) 12 @16", 12, 16, Activation::kTanh, true, false},
    {"state tanh(BN(h + u)) 12 @8", 12, 8, Activation::kTanh, true, false},
};

rla::bench::Timing time_case(const Case& c, int64_t batch, int reps) {
  rla::models::BatchNorm2d bn(c.channels);
  bn->train();
  auto make = [&] {
    return torch::randn({batch, c.channels, c.size, c.size}).contiguous(at::MemoryFormat::ChannelsLast);
  };
  const auto x0 = make(), before0 = make(), after0 = make(), grad = make();
  auto run = [&] {
    auto x = x0.clone().requires_grad_(true);
    rla::models::BatchNormAct with;
    with.activation = c.act;
    if (c.add_before) with.add_before = before0.clone().requires_grad_(true);
    if (c.add_after) with.add_after = after0.clone().requires_grad_(true);
    auto out = rla::models::batch_norm_act(x, *bn, with);
    out.backward(grad);
  };
  return rla::bench::time_runs(run, reps);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Training BatchNorms forward + backward, fused node against the separate operations"};
  int threads = 1, reps = 20;
  int64_t batch = 128;
  app.add_option("--threads", threads, "Intra-op threads")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--batch", batch)->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--reps", reps, "Timed runs per case")->check(CLI::PositiveNumber)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  rla::util::keep_freed_memory();  // as the trainer: no page faults from fresh mmaps per tensor
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  fmt::print("batch {}, {} thread(s), {} runs; ms per forward + backward (median, min)\n", batch, threads,
             reps);
  fmt::print("| BatchNorm | fused | separate | separate / fused |\n|---|---:|---:|---:|\n");
  for (const auto& c : kCases) {
    rla::models::set_batch_norm_fusion(true);
    const auto fused = time_case(c, batch, reps);
    rla::models::set_batch_norm_fusion(false);
    const auto separate = time_case(c, batch, reps);
    fmt::print("| {} | {:.3f} ({:.3f}) | {:.3f} ({:.3f}) | {:.2f}x |\n", c.what, fused.median_ms,
               fused.min_ms, separate.median_ms, separate.min_ms, separate.median_ms / fused.median_ms);
  }
  return 0;
}
