#pragma once
// Thread setup for LibTorch on CPU. Debian's LibTorch calls OpenBLAS (pthreads build) for GEMMs
// inside its own OpenMP-parallel loops; left at its default, OpenBLAS starts one busy-waiting
// thread per core besides LibTorch's, and on a 2-core machine a batch-1 3x3 convolution was
// measured at 8 ms instead of 0.07-0.5 ms (docs/performance.md). So OpenBLAS runs
// single-threaded and LibTorch's intra-op pool does the parallel work.

namespace rla::util {

/// Sets LibTorch's intra-op threads to `threads` (>= 1) and OpenBLAS's to 1 (when OpenBLAS is
/// the loaded BLAS; looked up at run time, so MKL or CUDA builds are unaffected).
void set_intra_op_threads(int threads);

/// OpenBLAS's own thread count, when OpenBLAS is loaded; returns false otherwise.
bool set_blas_threads(int threads);

/// libgomp reads OMP_WAIT_POLICY once, when it loads; its default (spin) made 2-thread workloads
/// 8-37x slower whenever another process shared the cores (docs/performance.md). Unless the user
/// chose a policy, sets OMP_WAIT_POLICY=passive and re-executes this program (/proc/self/exe,
/// same pid and arguments), so that child processes inherit it too. Call first thing in main;
/// returns only when no re-execution happened (the policy was set, or exec failed).
void prefer_passive_omp_wait(char** argv);

/// Intra-op threads for a batch: 1 at batch 1 (measured faster here), all cores otherwise.
int threads_for_batch(long batch);

}  // namespace rla::util
