#include "rla/models/op_counter.h"

namespace rla::models {
namespace {
thread_local OpCounter* g_active = nullptr;
}

OpCounter::OpCounter() : previous_(g_active) {
  g_active = this;
}
OpCounter::~OpCounter() {
  g_active = previous_;
}
OpCounter* active_counter() {
  return g_active;
}

}  // namespace rla::models
