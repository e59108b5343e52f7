#include "rla/engine/stop.h"

#include <signal.h>

#include <atomic>

namespace rla::engine {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_stop_signal{0};  // the first stop signal since install_stop_signals
void (*g_on_stop)() = &request_stop;

constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};

void set_action(int sig, void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sa.sa_flags = SA_RESTART;  // reads and writes under way (sockets, checkpoints) go on
  sigemptyset(&sa.sa_mask);
  for (int s : kStopSignals) sigaddset(&sa.sa_mask, s);  // one handler at a time
  sigaction(sig, &sa, nullptr);
}

// The first stop signal asks for the stop; from then on a SIGINT takes its default action (a
// second Ctrl-C ends the process at once) and a SIGTERM or SIGHUP is ignored: a batch scheduler
// may signal every process of the job, `rla launch` forwards what it gets, and neither should
// cut the checkpoint short.
extern "C" void on_stop_signal(int sig) {
  int none = 0;
  if (!g_stop_signal.compare_exchange_strong(none, sig)) return;
  set_action(SIGINT, SIG_DFL);
  set_action(SIGTERM, SIG_IGN);
  set_action(SIGHUP, SIG_IGN);
  g_on_stop();
}

}  // namespace

void request_stop() {
  g_stop = true;
}

bool stop_requested() {
  return g_stop.load();
}

void install_stop_signals(void (*on_stop)()) {
  g_on_stop = on_stop ? on_stop : &request_stop;
  g_stop_signal = 0;
  for (int s : kStopSignals) set_action(s, on_stop_signal);
}

int stop_signal() {
  return g_stop_signal.load();
}

void restore_stop_signals() {
  for (int s : kStopSignals) set_action(s, SIG_DFL);
}

}  // namespace rla::engine
