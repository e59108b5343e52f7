#include "rla/models/band_team.h"

#include <omp.h>

#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "rla/util/env.h"

namespace rla::models {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// One word holds the current call's number, its band count and the next unclaimed band, so that
// one compare-and-swap claims a band and checks that it belongs to the current call.
constexpr uint64_t kIndexBits = 16, kCountBits = 16;
constexpr uint64_t kIndexMask = (uint64_t{1} << kIndexBits) - 1;
constexpr uint64_t kCountMask = (uint64_t{1} << kCountBits) - 1;

uint64_t pack(uint32_t call, int count) {
  return (uint64_t{call} << (kIndexBits + kCountBits)) | (static_cast<uint64_t>(count) << kIndexBits);
}
uint32_t call_of(uint64_t w) {
  return static_cast<uint32_t>(w >> (kIndexBits + kCountBits));
}
int count_of(uint64_t w) {
  return static_cast<int>((w >> kIndexBits) & kCountMask);
}
int index_of(uint64_t w) {
  return static_cast<int>(w & kIndexMask);
}

struct Team {
  std::atomic<uint64_t> word{0};
  std::atomic<int> done{0};
  std::atomic<bool> stop{false};
  const std::function<void(int)>* band = nullptr;  // set by the caller before it posts a call
  uint32_t call = 0;                               // the caller's count of posted calls
  std::mutex error_mutex;
  std::exception_ptr error;
};

thread_local Team* active_team = nullptr;
std::atomic<int64_t> handoffs{0};
std::atomic<int64_t> banded{0};
std::atomic<int64_t> unbanded{0};

std::atomic<bool>& enabled_switch() {
  static std::atomic<bool> enabled{util::env_switch_on("RLA_BAND_TEAM")};
  return enabled;
}

// Claims and runs bands of call `call` until none is left.
void work(Team& team, uint32_t call) {
  uint64_t w = team.word.load(std::memory_order_acquire);
  while (call_of(w) == call && index_of(w) < count_of(w)) {
    if (!team.word.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire))
      continue;
    try {
      (*team.band)(index_of(w));
    } catch (...) {
      const std::lock_guard<std::mutex> lock(team.error_mutex);
      if (!team.error) team.error = std::current_exception();
    }
    team.done.fetch_add(1, std::memory_order_release);
    w = team.word.load(std::memory_order_acquire);
  }
}

// A team member other than the caller: spins until a call is posted, takes bands, until stop.
void member(Team& team) {
  uint32_t seen = 0;
  while (!team.stop.load(std::memory_order_acquire)) {
    const uint32_t call = call_of(team.word.load(std::memory_order_acquire));
    if (call != seen) {
      seen = call;
      work(team, call);
    } else {
      cpu_relax();
    }
  }
}

}  // namespace

void with_band_team(int threads, const std::function<void()>& body) {
  if (threads < 2 || omp_in_parallel() || active_team != nullptr) return body();
  Team team;
  std::exception_ptr error;
#pragma omp parallel num_threads(threads)
  {
    if (omp_get_thread_num() == 0) {
      active_team = &team;
      try {
        body();
      } catch (...) {
        error = std::current_exception();
      }
      active_team = nullptr;
      team.stop.store(true, std::memory_order_release);
    } else {
      member(team);
    }
  }
  if (error) std::rethrow_exception(error);
}

void run_bands(int n, const std::function<void(int)>& band) {
  banded.fetch_add(1, std::memory_order_relaxed);
  Team* team = active_team;
  if (team == nullptr || n < 2) {
#pragma omp parallel for num_threads(n) schedule(static, 1)
    for (int i = 0; i < n; ++i) band(i);
    return;
  }
  team->band = &band;
  team->error = nullptr;
  team->done.store(0, std::memory_order_relaxed);
  team->word.store(pack(++team->call, n), std::memory_order_release);
  work(*team, team->call);  // the caller takes bands too, all of them if no member is free
  while (team->done.load(std::memory_order_acquire) < n) cpu_relax();
  handoffs.fetch_add(1, std::memory_order_relaxed);
  if (team->error) std::rethrow_exception(team->error);
}

int64_t band_team_handoffs() {
  return handoffs.load();
}

int64_t count_banded_calls() {
  return banded.load();
}

int64_t count_unbanded_calls() {
  return unbanded.load();
}

void note_unbanded_call() {
  unbanded.fetch_add(1, std::memory_order_relaxed);
}

bool band_team_enabled() {
  return enabled_switch();
}

void set_band_team_enabled(bool enabled) {
  enabled_switch() = enabled;
}

}  // namespace rla::models
