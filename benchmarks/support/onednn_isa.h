#pragma once
// The ISA oneDNN runs on, for the plain-oneDNN benchmarks (bench_conv_layouts, bench_train_convs):
// whether AVX-512 kernels are allowed (DNNL_MAX_CPU_ISA may cap them) and the blocked activation
// layout that goes with the ISA. Include only where RLA_HAVE_DNNL is defined.
#include <dnnl.hpp>

namespace rla::bench {

/// True when oneDNN may use avx512_core kernels. cpu_isa values are bit sets (avx2_vnni >
/// avx512_core numerically), so avx512_core's bits are tested, not the value compared.
inline bool onednn_avx512() {
  const auto core = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
  return (static_cast<unsigned>(dnnl::get_effective_cpu_isa()) & core) == core;
}

/// nChw16c on AVX-512, nChw8c on AVX2: oneDNN's blocked layout for the vector width.
inline dnnl::memory::format_tag onednn_blocked_tag() {
  return onednn_avx512() ? dnnl::memory::format_tag::nChw16c : dnnl::memory::format_tag::nChw8c;
}

}  // namespace rla::bench
