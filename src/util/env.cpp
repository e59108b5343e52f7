#include "rla/util/env.h"

#include <cstdlib>
#include <cstring>

namespace rla::util {

bool env_switch_on(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr || std::strcmp(value, "0") != 0;
}

}  // namespace rla::util
