// Per-call cost of a small convolution (docs/performance.md, "Against ONNX Runtime"): ATen's
// oneDNN path (at::mkldnn_convolution, what the fast path calls) against a oneDNN primitive built
// once and executed on the same channels-last buffers — the overhead a prepared primitive would
// remove at batch 1. Needs Debian's libdnnl-dev (the oneDNN that libtorch_cpu links).
//   ./build/benchmarks/bench_onednn_direct [--threads 1] [--cases 16x32,32x16,64x8,12x32]
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <sstream>
#include <unordered_map>

#include "rla/util/parse.h"
#include "rla/util/threads.h"

#include "rla/config.h"  // RLA_HAVE_DNNL: oneDNN 2.x headers, used as LibTorch uses them (CMakeLists.txt)
#if defined(RLA_HAVE_DNNL)
#include <dnnl.hpp>
#endif

namespace {

/// Mean microseconds per call of f over `calls` calls after a warm-up.
template <typename F>
double mean_us(F&& f, int calls) {
  for (int i = 0; i < calls / 10 + 10; ++i) f();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) f();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / calls;
}

#ifdef RLA_HAVE_DNNL
/// A 3x3, stride-1, padding-1 convolution [1, C, S, S] -> [1, C, S, S] as one prepared primitive.
struct DirectConv {
  DirectConv(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, torch::Tensor& y)
      : eng(dnnl::engine::kind::cpu, 0), strm(eng) {
    using dnnl::memory;
    const memory::dims io = {x.size(0), x.size(1), x.size(2), x.size(3)};
    const memory::dims wd = {w.size(0), w.size(1), w.size(2), w.size(3)};
    const auto f32 = memory::data_type::f32;
    const memory::desc src(io, f32, memory::format_tag::nhwc), dst(io, f32, memory::format_tag::nhwc);
    const memory::desc bias({b.size(0)}, f32, memory::format_tag::a);
    const dnnl::convolution_forward::primitive_desc pd(
        dnnl::convolution_forward::desc(
            dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
            memory::desc(wd, f32, memory::format_tag::any), bias, dst, {1, 1}, {1, 1}, {1, 1}),
        eng);
    memory user_w({wd, f32, memory::format_tag::oihw}, eng, w.data_ptr<float>());
    weights = memory(pd.weights_desc(), eng);
    dnnl::reorder(user_w, weights).execute(strm, user_w, weights);
    prim = dnnl::convolution_forward(pd);
    args = {{DNNL_ARG_SRC, memory(src, eng, x.data_ptr<float>())},
            {DNNL_ARG_WEIGHTS, weights},
            {DNNL_ARG_BIAS, memory(bias, eng, b.data_ptr<float>())},
            {DNNL_ARG_DST, memory(dst, eng, y.data_ptr<float>())}};
  }
  void run() {
    prim.execute(strm, args);
    strm.wait();
  }
  dnnl::engine eng;
  dnnl::stream strm;
  dnnl::memory weights;
  dnnl::primitive prim;
  std::unordered_map<int, dnnl::memory> args;
};
#endif

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, calls = 2000;
  std::string cases = "16x32,32x16,64x8,12x32";
  CLI::App app{"Per-call cost of small convolutions: ATen's oneDNN path vs a prepared oneDNN primitive"};
  app.add_option("--threads", threads, "Intra-op threads")->check(CLI::PositiveNumber);
  app.add_option("--calls", calls, "Timed calls per case")->check(CLI::PositiveNumber);
  app.add_option("--cases", cases, "CxS list: C channels in and out, S x S maps, batch 1, 3x3 kernel");
  CLI11_PARSE(app, argc, argv);
#ifndef RLA_HAVE_DNNL
  std::cerr
      << "bench_onednn_direct: built without oneDNN (libdnnl-dev with LibTorch 1.x, or -DRLA_ONEDNN=ON)\n";
  return 1;
#else
  try {
    rla::util::set_intra_op_threads(threads);
    torch::NoGradGuard no_grad;
    fmt::print("threads {}, mean of {} calls\n", threads, calls);
    std::stringstream list(cases);
    for (std::string item; std::getline(list, item, ',');) {
      std::replace(item.begin(), item.end(), 'x', ',');
      const auto cs = rla::util::parse_int_list(item, 2, "--cases (CxS)");
      const auto c = cs[0], s = cs[1];
      const auto x = torch::randn({1, c, s, s}).contiguous(at::MemoryFormat::ChannelsLast);
      const auto w = torch::randn({c, c, 3, 3}), b = torch::randn({c});
      auto y = torch::empty({1, c, s, s}).contiguous(at::MemoryFormat::ChannelsLast);
      const double aten = mean_us([&] { at::mkldnn_convolution(x, w, b, {1, 1}, {1, 1}, {1, 1}, 1); }, calls);
      DirectConv direct(x, w, b, y);
      const double prepared = mean_us([&] { direct.run(); }, calls);
      const double diff = (at::conv2d(x, w, b, 1, 1) - y).abs().max().item<double>();
      fmt::print(
          "conv3x3 {:>3} ch {:>3}x{:<3}: ATen mkldnn_convolution {:7.1f} us  prepared primitive {:7.1f} us  "
          "({:.2f}x; outputs differ by {:.1e})\n",
          c, s, s, aten, prepared, aten / prepared, diff);
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_onednn_direct: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
#endif
}
