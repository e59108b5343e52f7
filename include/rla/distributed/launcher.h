#pragma once
// `rla launch`: starts the local processes of a data-parallel job the way torchrun does, with
// RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT in their
// environment. On several machines the same command runs on each with its own node_rank.
#include <string>
#include <vector>

namespace rla::distributed {

struct LaunchConfig {
  std::string executable;         ///< the program each process runs (rla: /proc/self/exe)
  std::vector<std::string> args;  ///< its arguments, e.g. {"train", "--epochs", "1"}
  int nproc = 1;                  ///< processes on this machine
  int nnodes = 1;                 ///< machines
  int node_rank = 0;              ///< this machine: ranks node_rank*nproc ... +nproc-1
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int threads = 0;  ///< intra-op threads per process (OMP_NUM_THREADS, and threads_option); 0: cores / nproc
  /// The executable's option that sets its threads (rla: its root option for them): when set and
  /// absent from `args`, it is passed first, followed by the thread count.
  std::string threads_option;
  double kill_grace_s = 10;  ///< after a failure, SIGTERM the others, then SIGKILL after this
};

/// Runs the processes and waits for them. Throws util::FieldError naming the field of a bad value. SIGINT,
/// SIGTERM and SIGHUP are forwarded to them (a training run's ranks then stop after one common step with a
/// checkpoint, engine/stop.h) and the launcher returns 128 + that signal; a second SIGINT kills them. When
/// one fails, the others are terminated (SIGTERM, SIGKILL after kill_grace_s). Otherwise returns 0 when all
/// exit 0, else the first failure's exit code (128 + signal for a killed process).
int launch(const LaunchConfig& config);

}  // namespace rla::distributed
