// Does a blocked activation layout pay? The convolutions of ResNet-50 / RLA-ResNet-50 (and the
// CIFAR nets' narrow state convolutions), each as a prepared oneDNN primitive over channels-last
// (nhwc) buffers — what the fast path runs — and over the layout oneDNN picks itself
// (nChw16c on AVX-512, nChw8c on AVX2) and over format_tag::any, timed in GFLOP/s on one machine.
// Plain oneDNN (Debian's libdnnl-dev), no LibTorch. docs/performance.md, rounds five and eight (the
// 1x1 expansions with the residual sum, and the strided 1x1 downsamples).
//   ./build/benchmarks/bench_conv_layouts [--threads 2] [--batch 32] [--reps 20] [--filter TEXT]
//   [--binary-add]
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <omp.h>

#include "rla/config.h"  // RLA_HAVE_DNNL: oneDNN 2.x headers, used as LibTorch uses them (CMakeLists.txt)
#if defined(RLA_HAVE_DNNL)
#include <dnnl.hpp>

#include "support/onednn_isa.h"
#endif

namespace {

struct Shape {
  const char* what;
  int64_t cin, cout, size, kernel, stride;
  bool sum = false;  ///< the residual added as a sum post-op (into the output buffer), before the ReLU
};

// ResNet-50 at 224x224 (stage maps 56, 28, 14, 7), RLA's extras with k = 32, and CIFAR's k = 12.
const std::vector<Shape> kShapes = {
    {"r50 s1 1x1 64->64", 64, 64, 56, 1, 1},
    {"r50 s1 3x3 64", 64, 64, 56, 3, 1},
    {"r50 s1 1x1 64->256", 64, 256, 56, 1, 1},
    {"r50 s1 1x1 256->64", 256, 64, 56, 1, 1},
    {"r50 s2 3x3 128 /2", 128, 128, 56, 3, 2},
    {"r50 s2 1x1 512->128", 512, 128, 28, 1, 1},
    {"r50 s2 1x1 128->512", 128, 512, 28, 1, 1},
    {"r50 s3 3x3 256", 256, 256, 14, 3, 1},
    {"r50 s3 1x1 1024->256", 1024, 256, 14, 1, 1},
    {"r50 s3 1x1 256->1024", 256, 1024, 14, 1, 1},
    {"r50 s4 3x3 512", 512, 512, 7, 3, 1},
    {"r50 s4 1x1 2048->512", 2048, 512, 7, 1, 1},
    {"r50 s1 1x1 64->256 + sum", 64, 256, 56, 1, 1, true},
    {"r50 s2 1x1 128->512 + sum", 128, 512, 28, 1, 1, true},
    {"r50 s3 1x1 256->1024 + sum", 256, 1024, 14, 1, 1, true},
    {"r50 s4 1x1 512->2048 + sum", 512, 2048, 7, 1, 1, true},
    {"r50 down 1x1 256->512 /2", 256, 512, 56, 1, 2},
    {"r50 down 1x1 512->1024 /2", 512, 1024, 28, 1, 2},
    {"r50 down 1x1 1024->2048 /2", 1024, 2048, 14, 1, 2},
    {"rla conv_out 1x1 256->32", 256, 32, 56, 1, 1},
    {"rla recurrent 3x3 32", 32, 32, 56, 3, 1},
    {"rla conv1_h 1x1 32->64", 32, 64, 56, 1, 1},
    {"rla conv_out 1x1 2048->32", 2048, 32, 7, 1, 1},
    {"cifar 3x3 16 @32", 16, 16, 32, 3, 1},
    {"cifar recurrent 3x3 12 @32", 12, 12, 32, 3, 1},
    {"cifar conv_out 1x1 16->12 @32", 16, 12, 32, 1, 1},
};

#ifdef RLA_HAVE_DNNL
// Mean seconds per execution of one prepared convolution with src/dst in `tag`.
// binary_add: the residual as a binary-add post-op reading its own buffer (dst a separate buffer)
// instead of the sum post-op that reads it from dst.
double time_conv(const Shape& s, int64_t batch, dnnl::memory::format_tag tag, int reps, dnnl::engine& eng,
                 dnnl::stream& strm, bool binary_add) {
  using dnnl::memory;
  const auto f32 = memory::data_type::f32;
  const int64_t pad = s.kernel / 2, out = (s.size + 2 * pad - s.kernel) / s.stride + 1;
  const memory::desc src({batch, s.cin, s.size, s.size}, f32, tag);
  const memory::desc dst({batch, s.cout, out, out}, f32, tag);
  const memory::desc weights({s.cout, s.cin, s.kernel, s.kernel}, f32, memory::format_tag::any);
  const memory::desc bias({s.cout}, f32, memory::format_tag::a);
  dnnl::post_ops ops;
  const bool binary = s.sum && binary_add;
  if (binary) {
    // The residual's layout: dst's own when tag is a concrete layout; with `any`, channels-last.
    ops.append_binary(dnnl::algorithm::binary_add,
                      memory::desc({batch, s.cout, out, out}, f32,
                                   tag == memory::format_tag::any ? memory::format_tag::nhwc : tag));
  } else if (s.sum) {
    ops.append_sum(1.0F);
  }
  ops.append_eltwise(1.0F, dnnl::algorithm::eltwise_relu, 0.0F, 0.0F);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  const dnnl::convolution_forward::primitive_desc pd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                      src, weights, bias, dst, {s.stride, s.stride}, {pad, pad}, {pad, pad}),
      attr, eng);
  memory src_m(pd.src_desc(), eng), dst_m(pd.dst_desc(), eng), w_m(pd.weights_desc(), eng), b_m(bias, eng);
  memory residual_m(pd.dst_desc(), eng);
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto* m : {&src_m, &w_m, &b_m, &dst_m, &residual_m}) {  // dst: the residual a sum post-op reads
    auto* p = static_cast<float*>(m->get_data_handle());
    for (size_t i = 0; i < m->get_desc().get_size() / sizeof(float); ++i) p[i] = u(gen);
  }
  dnnl::convolution_forward conv(pd);
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, w_m}, {DNNL_ARG_BIAS, b_m}, {DNNL_ARG_DST, dst_m}};
  if (binary) args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1] = residual_m;
  for (int i = 0; i < 3; ++i) conv.execute(strm, args);
  strm.wait();
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {  // the best of three means
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) conv.execute(strm, args);
    strm.wait();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / reps);
  }
  return best;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 32;
  int reps = 20;
  CLI::App app{"Prepared oneDNN convolutions: channels-last (nhwc) vs oneDNN's blocked layout"};
  app.add_option("--batch", batch, "Batch size")->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "Executions per timing")->check(CLI::PositiveNumber);
  int threads = 0;
  app.add_option("--threads", threads, "OpenMP threads (default: OMP_NUM_THREADS or all cores)");
  std::string filter;
  app.add_option("--filter", filter, "Only the convolutions whose name contains this text");
  bool binary_add = false;
  app.add_flag("--binary-add", binary_add,
               "The '+ sum' rows add the residual as a binary-add post-op from its own buffer instead of "
               "oneDNN's sum post-op (which reads it from the output buffer)");
  CLI11_PARSE(app, argc, argv);
#ifndef RLA_HAVE_DNNL
  std::cerr
      << "bench_conv_layouts: built without oneDNN (libdnnl-dev with LibTorch 1.x, or -DRLA_ONEDNN=ON)\n";
  return 1;
#else
  if (threads > 0) omp_set_num_threads(threads);
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  fmt::print("batch {}, best of 3 means of {} executions, GFLOP/s (2 x MACs / s)\n", batch, reps);
  // The blocked layout named explicitly: with format_tag::any, oneDNN 2.6 picked channels-last for
  // these shapes (the last column), which is what rounds four and five compared against.
  const bool avx512 = rla::bench::onednn_avx512();
  const auto blocked = rla::bench::onednn_blocked_tag();
  fmt::print("{:<32} {:>10} {:>10} {:>8} {:>10}\n", "convolution (+ bias, [sum,] ReLU)", "nhwc",
             avx512 ? "nChw16c" : "nChw8c", "ratio", "any");
  double sum_nhwc = 0, sum_blocked = 0;
  for (const auto& s : kShapes) {
    if (!filter.empty() && std::string(s.what).find(filter) == std::string::npos) continue;
    const int64_t out = (s.size + 2 * (s.kernel / 2) - s.kernel) / s.stride + 1;
    const double flops = 2.0 * batch * s.cout * out * out * s.cin * s.kernel * s.kernel;
    const double a = time_conv(s, batch, dnnl::memory::format_tag::nhwc, reps, eng, strm, binary_add);
    const double b = time_conv(s, batch, blocked, reps, eng, strm, binary_add);
    const double c = time_conv(s, batch, dnnl::memory::format_tag::any, reps, eng, strm, binary_add);
    sum_nhwc += a;
    sum_blocked += b;
    fmt::print("{:<32} {:>10.1f} {:>10.1f} {:>7.2f}x {:>10.1f}\n", s.what, flops / a / 1e9, flops / b / 1e9,
               a / b, flops / c / 1e9);
  }
  fmt::print("total time of the list: nhwc {:.2f} ms, blocked {:.2f} ms ({:.2f}x)\n", 1e3 * sum_nhwc,
             1e3 * sum_blocked, sum_nhwc / sum_blocked);
  return 0;
#endif
}
