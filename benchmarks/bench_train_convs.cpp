// Where RLA's training time goes, convolution by convolution: the 3x3 and 1x1 convolutions of a
// resnet20 / rla_resnet20 training step (batch 128 at 32x32, k = 12), each timed forward,
// backward-data and backward-weights as plain oneDNN primitives, over channels-last (what the
// trainer runs), NCHW, the blocked layout of the ISA (nChw16c on AVX-512, nChw8c on AVX2) and
// format_tag::any, with the direct algorithm and oneDNN's Winograd where it has one. Warm caches,
// so a figure here is a kernel's own rate, not its share of a step (benchmarks/onednn_layers.py
// --train gives that). docs/performance.md, round nine.
//   ./build/benchmarks/bench_train_convs [--threads 1] [--batch 128] [--reps 10] [--winograd]
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <vector>

#include <omp.h>

#include "rla/config.h"  // RLA_HAVE_DNNL: oneDNN 2.x headers, used as LibTorch uses them (CMakeLists.txt)
#if defined(RLA_HAVE_DNNL)
#include <dnnl.hpp>

#include "support/onednn_isa.h"
#include "support/timing.h"
#endif

namespace {

struct Shape {
  const char* what;
  int64_t cin, cout, size, kernel;
};

// Stride-1 convolutions of the two CIFAR nets (stage maps 32, 16, 8).
const std::vector<Shape> kShapes = {
    {"block 3x3 16 @32", 16, 16, 32, 3},     {"block 3x3 32 @16", 32, 32, 16, 3},
    {"block 3x3 64 @8", 64, 64, 8, 3},       {"rla conv1 28->16 @32", 28, 16, 32, 3},
    {"rla conv1 44->32 @16", 44, 32, 16, 3}, {"rla conv1 76->64 @8", 76, 64, 8, 3},
    {"recurrent 12 @32", 12, 12, 32, 3},     {"recurrent 12 @16", 12, 12, 16, 3},
    {"conv_out 16->12 @32", 16, 12, 32, 1},  {"conv_out 32->12 @16", 32, 12, 16, 1},
};

#ifdef RLA_HAVE_DNNL
using dnnl::memory;
using Tag = memory::format_tag;

template <class F>
double median_ms(F&& run, int reps) {
  return rla::bench::time_runs(run, reps).median_ms;
}

memory filled(const memory::desc& desc, const dnnl::engine& engine) {
  memory m(desc, engine);
  auto* p = static_cast<float*>(m.get_data_handle());
  const size_t n = desc.get_size() / sizeof(float);
  for (size_t i = 0; i < n; ++i) p[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
  return m;
}

struct Timing {
  double forward = 0, backward_data = 0, backward_weights = 0;
  std::string impl;
};

// The three passes of one convolution; throws dnnl::error where oneDNN has no implementation.
Timing time_passes(const Shape& s, int64_t batch, Tag act, dnnl::algorithm alg, int reps,
                   const dnnl::engine& engine, dnnl::stream& stream) {
  const int64_t pad = s.kernel / 2;
  const memory::desc src({batch, s.cin, s.size, s.size}, memory::data_type::f32, act);
  const memory::desc wei({s.cout, s.cin, s.kernel, s.kernel}, memory::data_type::f32, Tag::any);
  const memory::desc dst({batch, s.cout, s.size, s.size}, memory::data_type::f32, act);
  const memory::dims strides{1, 1}, padding{pad, pad};
  using namespace dnnl;
  const convolution_forward::primitive_desc fwd(
      convolution_forward::desc(prop_kind::forward_training, alg, src, wei, dst, strides, padding, padding),
      engine);
  const convolution_backward_data::primitive_desc bwd_data(
      convolution_backward_data::desc(alg, src, wei, dst, strides, padding, padding), engine, fwd);
  const convolution_backward_weights::primitive_desc bwd_weights(
      convolution_backward_weights::desc(alg, src, wei, dst, strides, padding, padding), engine, fwd);
  auto x = filled(fwd.src_desc(), engine), w = filled(fwd.weights_desc(), engine);
  auto y = filled(fwd.dst_desc(), engine), dx = filled(bwd_data.diff_src_desc(), engine);
  auto dy = filled(bwd_data.diff_dst_desc(), engine), dw = filled(bwd_weights.diff_weights_desc(), engine);
  auto x_w = filled(bwd_weights.src_desc(), engine), dy_w = filled(bwd_weights.diff_dst_desc(), engine);
  convolution_forward f(fwd);
  convolution_backward_data bd(bwd_data);
  convolution_backward_weights bw(bwd_weights);
  Timing t;
  t.forward = median_ms(
      [&] {
        f.execute(stream, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, y}});
        stream.wait();
      },
      reps);
  t.backward_data = median_ms(
      [&] {
        bd.execute(stream, {{DNNL_ARG_DIFF_SRC, dx}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_DST, dy}});
        stream.wait();
      },
      reps);
  t.backward_weights = median_ms(
      [&] {
        bw.execute(stream, {{DNNL_ARG_SRC, x_w}, {DNNL_ARG_DIFF_WEIGHTS, dw}, {DNNL_ARG_DIFF_DST, dy_w}});
        stream.wait();
      },
      reps);
  t.impl = std::string(fwd.impl_info_str()) + " / " + bwd_data.impl_info_str() + " / " +
           bwd_weights.impl_info_str();
  return t;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Training passes of the CIFAR nets' convolutions, per layout and algorithm (plain oneDNN)"};
  int threads = 0, reps = 10;
  int64_t batch = 128;
  bool winograd = false;
  app.add_option("--threads", threads, "OpenMP threads (default: OMP_NUM_THREADS or all cores)");
  app.add_option("--batch", batch, "Images per call")->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "Timed calls per pass (median)")->check(CLI::PositiveNumber);
  app.add_flag("--winograd", winograd,
               "Also oneDNN's Winograd algorithm (3x3 only; AVX-512 only in oneDNN 2.x)");
  CLI11_PARSE(app, argc, argv);
#ifndef RLA_HAVE_DNNL
  std::cerr
      << "bench_train_convs: built without oneDNN (libdnnl-dev with LibTorch 1.x, or -DRLA_ONEDNN=ON)\n";
  return 1;
#else
  if (threads > 0) omp_set_num_threads(threads);
  const bool avx512 = rla::bench::onednn_avx512();
  const Tag blocked = rla::bench::onednn_blocked_tag();
  std::cout << fmt::format(
      "batch {}, {} threads, {}; ms per call (median of {}), GFLOP/s over the three passes\n", batch,
      omp_get_max_threads(), avx512 ? "AVX-512" : "AVX2", reps);
  std::cout << "| convolution | layout | algorithm | forward | bwd data | bwd weights | all | GFLOP/s | "
               "oneDNN kernels |\n"
               "|---|---|---|---:|---:|---:|---:|---:|---|\n";
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  struct Layout {
    const char* name;
    Tag tag;
  };
  const std::vector<Layout> layouts = {{"channels-last", Tag::nhwc},
                                       {"nchw", Tag::nchw},
                                       {avx512 ? "nChw16c" : "nChw8c", blocked},
                                       {"any", Tag::any}};
  for (const auto& s : kShapes) {
    const double gflop =
        3.0 * 2.0 * static_cast<double>(batch * s.cin * s.cout * s.size * s.size * s.kernel * s.kernel) / 1e9;
    for (const auto& layout : layouts) {
      for (const auto alg : {dnnl::algorithm::convolution_direct, dnnl::algorithm::convolution_winograd}) {
        const bool wino = alg == dnnl::algorithm::convolution_winograd;
        if (wino && (!winograd || s.kernel != 3 || layout.tag == Tag::nhwc || layout.tag == Tag::nchw))
          continue;
        try {
          const auto t = time_passes(s, batch, layout.tag, alg, reps, engine, stream);
          const double all = t.forward + t.backward_data + t.backward_weights;
          std::cout << fmt::format("| {} | {} | {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.0f} | {} |\n",
                                   s.what, layout.name, wino ? "winograd" : "direct", t.forward,
                                   t.backward_data, t.backward_weights, all, gflop / all * 1e3, t.impl);
        } catch (const dnnl::error& e) {
          std::cout << fmt::format("| {} | {} | {} | - | - | - | - | - | none ({}) |\n", s.what, layout.name,
                                   wino ? "winograd" : "direct", e.what());
        }
      }
    }
  }
  return 0;
#endif
}
