#include "rla/util/threads.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include <torch/torch.h>

namespace rla::util {

bool set_blas_threads(int threads) {
  using SetThreads = void (*)(int);
  static auto* fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (fn == nullptr) return false;
  fn(std::max(1, threads));
  return true;
}

void set_intra_op_threads(int threads) {
  set_blas_threads(1);
  torch::set_num_threads(std::max(1, threads));
}

void prefer_passive_omp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then carry on with the default
}

int threads_for_batch(long batch) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return batch <= 1 ? 1 : cores;
}

}  // namespace rla::util
