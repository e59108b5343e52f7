#include "rla/distributed/process_group.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "rla/util/field_error.h"

namespace rla::distributed {
namespace {

int env_int(const char* name, int fallback, int min_value) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < min_value || x > 65535 * 1024L)
    throw std::invalid_argument(
        fmt::format("environment variable {}={} is not an integer >= {}", name, v, min_value));
  return static_cast<int>(x);
}

// c10::Error's what() carries a backtrace: keep the message's first line.
std::string first_line(const std::exception& e) {
  std::string msg = e.what();
  if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) msg = ce->what_without_backtrace();
  if (const auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
  return msg;
}

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

}  // namespace

DistConfig config_from_env(double timeout_s) {
  DistConfig c;
  c.timeout_s = timeout_s;
  c.world_size = env_int("WORLD_SIZE", 1, 1);
  c.rank = env_int("RANK", 0, 0);
  c.local_rank = env_int("LOCAL_RANK", c.rank, 0);
  c.local_world_size = env_int("LOCAL_WORLD_SIZE", c.world_size, 1);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) c.master_addr = a;
  c.master_port = env_int("MASTER_PORT", c.master_port, 1);
  if (c.master_port > 65535)
    throw std::invalid_argument(fmt::format("MASTER_PORT={} is not a port", c.master_port));
  if (c.rank >= c.world_size)
    throw std::invalid_argument(
        fmt::format("RANK={} but WORLD_SIZE={}: ranks are 0..WORLD_SIZE-1", c.rank, c.world_size));
  if (!(timeout_s > 0))
    throw util::FieldError("timeout_s", fmt::format("timeout_s must be positive, got {}", timeout_s));
  return c;
}

bool world_size_from_env_above_one() {
  return env_int("WORLD_SIZE", 1, 1) > 1;
}

ProcessGroup::ProcessGroup(const DistConfig& config) : config_(config) {
  const auto timeout = to_ms(config_.timeout_s);
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(config_.master_port);
  so.isServer = config_.rank == 0;
  so.numWorkers = static_cast<size_t>(config_.world_size);
  so.waitWorkers = true;
  so.timeout = timeout;
  try {
    store_ = c10::make_intrusive<c10d::TCPStore>(config_.master_addr, so);
  } catch (const std::exception& e) {
    const std::string hint = config_.rank == 0 ? fmt::format("not all {} ranks connected", config_.world_size)
                                               : std::string("is the master (rank 0) running and reachable?");
    throw std::runtime_error(fmt::format("rank {}/{}: rendezvous at {}:{} failed within {} s: {} ({})",
                                         config_.rank, config_.world_size, config_.master_addr,
                                         config_.master_port, config_.timeout_s, hint, first_line(e)));
  }
  // Count the ranks in, so that a missing one is reported as such (Gloo's own set-up would only
  // say "Socket Timeout"), within the same deadline.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int64_t joined = store_->add("rla/joined", 1);
  while (joined < config_.world_size) {
    if (std::chrono::steady_clock::now() >= deadline)
      throw std::runtime_error(fmt::format("rank {}/{}: only {} of {} ranks joined at {}:{} within {} s",
                                           config_.rank, config_.world_size, joined, config_.world_size,
                                           config_.master_addr, config_.master_port, config_.timeout_s));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    joined = store_->add("rla/joined", 0);
  }
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  // Bind Gloo to the interface that reaches the master: loopback for local runs.
  const bool local = config_.master_addr == "127.0.0.1" || config_.master_addr == "localhost";
  options->devices.push_back(local ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                   : c10d::ProcessGroupGloo::createDefaultDevice());
  options->threads = 2;
  try {
    pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, config_.rank, config_.world_size, options);
  } catch (const std::exception& e) {
    fail("joining the Gloo process group", e);
  }
}

ProcessGroup::~ProcessGroup() = default;

void ProcessGroup::fail(const char* what, const std::exception& e) const {
  throw std::runtime_error(fmt::format(
      "rank {}/{}: {} failed ({}) — another rank exited, hung for more than {} s, or the network failed",
      config_.rank, config_.world_size, what, first_line(e), config_.timeout_s));
}

c10::intrusive_ptr<c10d::Work> ProcessGroup::all_reduce_sum_async(std::vector<at::Tensor>& tensors) {
  return pg_->allreduce(tensors);
}

void ProcessGroup::wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    fail(what, e);
  }
}

void ProcessGroup::all_reduce_sum(std::vector<at::Tensor>& tensors, const char* what) {
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = pg_->allreduce(tensors);
  } catch (const std::exception& e) {
    fail(what, e);
  }
  wait(work, what);
}

void ProcessGroup::broadcast(std::vector<at::Tensor>& tensors, int root, const char* what) {
  c10d::BroadcastOptions o;
  o.rootRank = root;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = pg_->broadcast(tensors, o);
  } catch (const std::exception& e) {
    fail(what, e);
  }
  wait(work, what);
}

void ProcessGroup::barrier(const char* what) {
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = pg_->barrier();
  } catch (const std::exception& e) {
    fail(what, e);
  }
  wait(work, what);
}

}  // namespace rla::distributed
