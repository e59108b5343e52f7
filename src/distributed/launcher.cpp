#include "rla/distributed/launcher.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "rla/util/field_error.h"

extern char** environ;

namespace rla::distributed {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> child_environment(const LaunchConfig& c, int local_rank, int threads) {
  const std::vector<std::string> ours = {"RANK",        "WORLD_SIZE",  "LOCAL_RANK",     "LOCAL_WORLD_SIZE",
                                         "MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS"};
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    const auto key = kv.substr(0, kv.find('='));
    if (std::find(ours.begin(), ours.end(), key) == ours.end()) env.push_back(kv);
  }
  env.push_back(fmt::format("RANK={}", c.node_rank * c.nproc + local_rank));
  env.push_back(fmt::format("WORLD_SIZE={}", c.nnodes * c.nproc));
  env.push_back(fmt::format("LOCAL_RANK={}", local_rank));
  env.push_back(fmt::format("LOCAL_WORLD_SIZE={}", c.nproc));
  env.push_back(fmt::format("MASTER_ADDR={}", c.master_addr));
  env.push_back(fmt::format("MASTER_PORT={}", c.master_port));
  env.push_back(fmt::format("OMP_NUM_THREADS={}", threads));
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

void validate_launch(const LaunchConfig& c) {
  using util::FieldError;
  if (c.nproc < 1) throw FieldError("nproc", fmt::format("nproc must be at least 1, got {}", c.nproc));
  if (c.nnodes < 1) throw FieldError("nnodes", fmt::format("nnodes must be at least 1, got {}", c.nnodes));
  if (c.node_rank < 0 || c.node_rank >= c.nnodes)
    throw FieldError("node_rank", fmt::format("node_rank {} is outside 0..{}", c.node_rank, c.nnodes - 1));
  if (c.master_port < 1 || c.master_port > 65535)
    throw FieldError("master_port", fmt::format("master_port {} is not a port", c.master_port));
  if (c.args.empty()) throw std::invalid_argument("nothing to launch: no arguments for the processes");
}

}  // namespace

int launch(const LaunchConfig& c) {
  validate_launch(c);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = c.threads > 0 ? c.threads : std::max(1, cores / c.nproc);
  std::vector<std::string> argv = {c.executable};
  if (!c.threads_option.empty() &&
      std::find(c.args.begin(), c.args.end(), c.threads_option) == c.args.end()) {
    argv.push_back(c.threads_option);  // before the arguments (rla: a root option, before the subcommand)
    argv.push_back(std::to_string(threads));
  }
  argv.insert(argv.end(), c.args.begin(), c.args.end());

  // Signals are taken synchronously with sigtimedwait; children get the original mask back.
  sigset_t handled, old_mask;
  sigemptyset(&handled);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&handled, s);
  pthread_sigmask(SIG_BLOCK, &handled, &old_mask);

  std::vector<pid_t> pids;
  for (int local = 0; local < c.nproc; ++local) {
    auto env = child_environment(c, local, threads);
    auto args = argv;
    auto envp = c_strings(env);
    auto argvp = c_strings(args);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(fmt::format("fork failed: {}", std::strerror(errno)));
    if (pid == 0) {
      setpgid(0, 0);                     // the terminal's Ctrl-C reaches the launcher only; it forwards
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the launcher
      if (getppid() != parent) _exit(1);
      pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
      execve(argvp[0], argvp.data(), envp.data());
      _exit(127);
    }
    pids.push_back(pid);
  }

  int result = 0, alive = c.nproc, interrupts = 0;
  bool terminating = false, forwarded = false;
  Clock::time_point kill_at{};
  auto signal_all = [&](int sig) {
    for (pid_t p : pids) {
      if (p > 0) kill(p, sig);
    }
  };
  while (alive > 0) {
    int status = 0;
    pid_t done = 0;
    while (alive > 0 && (done = waitpid(-1, &status, WNOHANG)) > 0) {
      const auto it = std::find(pids.begin(), pids.end(), done);
      if (it == pids.end()) continue;
      const int local = static_cast<int>(it - pids.begin());
      *it = -1;
      --alive;
      const int code = exit_code(status);
      if (code != 0 && result == 0 && !forwarded) {
        result = code;
        fmt::print(stderr, "rla launch: rank {} (local {}) exited with code {}{}\n",
                   c.node_rank * c.nproc + local, local, code,
                   alive > 0 ? fmt::format("; stopping the other {} process(es)", alive) : "");
      }
      if (code != 0 && !terminating && !forwarded && alive > 0) {
        terminating = true;
        signal_all(SIGTERM);
        kill_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(c.kill_grace_s * 1000));
      }
    }
    if (alive == 0) break;
    if (terminating && Clock::now() >= kill_at) signal_all(SIGKILL);
    const timespec tick{0, 200 * 1000 * 1000};
    const int sig = sigtimedwait(&handled, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
      forwarded = true;
      if (sig == SIGINT && ++interrupts >= 2) {
        signal_all(SIGKILL);
      } else {
        signal_all(sig);  // the ranks agree on a step, save a checkpoint and stop
      }
      if (result == 0) result = 128 + sig;
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return result;
}

}  // namespace rla::distributed
