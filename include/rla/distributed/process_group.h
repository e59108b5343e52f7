#pragma once
// A c10d process group over Gloo, set up the way torchrun does it: every process reads RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; rank 0 hosts a TCPStore at the master
// address, every rank connects to it, and Gloo builds its full mesh through the store.
// Every blocking step (store connect, mesh set-up, each collective) gives up after `timeout`.
#include <c10/util/intrusive_ptr.h>

#include <chrono>
#include <string>
#include <vector>

namespace at {
class Tensor;
}
namespace c10d {
class ProcessGroupGloo;
class TCPStore;
class Work;
}  // namespace c10d

namespace rla::distributed {

struct DistConfig {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;  ///< processes on this machine (threads per process = cores / this)
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double timeout_s = 300;  ///< store connect, mesh set-up and every collective
};

/// Reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT (absent ones
/// keep their defaults). Throws std::invalid_argument naming the variable when one is malformed.
DistConfig config_from_env(double timeout_s);

/// True when the environment asks for more than one process (WORLD_SIZE > 1).
bool world_size_from_env_above_one();

/// One Gloo process group. Collectives are synchronous wrappers that rethrow failures as
/// std::runtime_error naming this rank, the operation and the likely cause (a peer died or hung).
class ProcessGroup {
 public:
  /// Rendezvous: blocks until all `world_size` ranks joined, or throws after the timeout.
  explicit ProcessGroup(const DistConfig& config);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return config_.rank; }
  int size() const { return config_.world_size; }
  const DistConfig& config() const { return config_; }

  /// In-place sum over ranks of each tensor (c10d allreduce, ReduceOp::SUM).
  void all_reduce_sum(std::vector<at::Tensor>& tensors, const char* what);
  /// Starts an asynchronous sum; finish it with wait(). Used to overlap buckets.
  c10::intrusive_ptr<c10d::Work> all_reduce_sum_async(std::vector<at::Tensor>& tensors);
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what);
  /// In-place copy of rank `root`'s tensors to every rank (c10d broadcast).
  void broadcast(std::vector<at::Tensor>& tensors, int root, const char* what);
  void barrier(const char* what);

  /// The underlying group, for callers that need other collectives.
  const c10::intrusive_ptr<c10d::ProcessGroupGloo>& gloo() const { return pg_; }

 private:
  [[noreturn]] void fail(const char* what, const std::exception& e) const;

  DistConfig config_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg_;
};

}  // namespace rla::distributed
