#include "rla/util/memory.h"

#include <climits>
#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace rla::util {

bool keep_freed_memory() {
  if (std::getenv("RLA_SYSTEM_MALLOC") != nullptr) return false;
#if defined(__GLIBC__)
  return mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
#else
  return false;
#endif
}

}  // namespace rla::util
