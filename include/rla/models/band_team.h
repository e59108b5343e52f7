#pragma once
// Batch 1 on two or more threads: a prepared convolution cuts a small layer into bands of output
// rows, one per thread (src/models/prepared_conv.cpp). Run in an OpenMP parallel region per layer,
// that costs ~3 us to start and end every time, about a third of a CIFAR layer's own time at batch
// 1 (docs/performance.md, round ten). A band team keeps one region open for a whole forward
// instead: the calling thread runs the network, the team's other threads spin until a layer posts
// its bands, and a hand-off costs well under a microsecond. (A pool of threads of our own beside
// OpenMP's was measured slower: libgomp's idle workers spin on the same cores.)
#include <cstdint>
#include <functional>

namespace rla::models {

/// Runs body() on the calling thread while `threads` - 1 more OpenMP threads wait for bands (see
/// run_bands); returns when body returns, rethrowing what it threw. Inside, every other OpenMP
/// loop of the calling thread (ATen's, a non-banded oneDNN primitive's) runs on that one thread,
/// so use it where the body's parallel work is banded layers: a forward at batch 1 that adds no
/// count_unbanded_calls(). Runs body() directly when threads < 2 or already inside a region.
void with_band_team(int threads, const std::function<void()>& body);

/// Runs band(0) ... band(n - 1) and returns when all are done, rethrowing what one threw: on the
/// band team when the calling thread runs inside with_band_team, else in an OpenMP parallel
/// region of n threads. The bands must not depend on one another.
void run_bands(int n, const std::function<void(int)>& band);

/// Hand-offs run on a band team since the process started (a test's proof that one was used).
int64_t band_team_handoffs();

/// Layers run in bands (run_bands calls), and prepared convolutions run as one multi-threaded
/// primitive instead (counted by prepared_conv.cpp), since the process started: a forward that adds
/// banded calls and no unbanded one can run in a band team.
int64_t count_banded_calls();
int64_t count_unbanded_calls();
void note_unbanded_call();

/// Whether inference::FastNetwork runs batch-1 forwards in a band team (RLA_BAND_TEAM is not
/// "0"; for A/B runs and tests).
bool band_team_enabled();
void set_band_team_enabled(bool enabled);

}  // namespace rla::models
