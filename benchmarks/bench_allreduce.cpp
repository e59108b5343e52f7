// The cost of one gradient all-reduce on this machine: two ranks (two threads, each with its own
// c10d::ProcessGroupGloo over 127.0.0.1) sum a float tensor of the given size, as
// make_data_parallel_hooks does once per step and bucket. Prints the median and 90th percentile.
// Usage: bench_allreduce [megabytes=1.26 (rla_resnet20's gradients)] [iterations=200]
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "rla/distributed/process_group.h"

namespace {

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

int main(int argc, char** argv) {
  const double mb = argc > 1 ? std::stod(argv[1]) : 1.26;
  const int iters = argc > 2 ? std::stoi(argv[2]) : 200;
  const auto numel = static_cast<int64_t>(mb * 1e6 / 4);
  const int port = free_port();
  std::vector<double> ms;
  auto rank_main = [&](int rank) {
    rla::distributed::DistConfig c;
    c.rank = rank, c.world_size = 2, c.master_port = port, c.timeout_s = 60;
    rla::distributed::ProcessGroup pg(c);
    std::vector<at::Tensor> t = {torch::ones({numel})};
    for (int i = 0; i < iters + 10; ++i) {
      pg.barrier("barrier");  // start together: time the transfer, not the other rank's lateness
      const auto t0 = std::chrono::steady_clock::now();
      pg.all_reduce_sum(t, "all-reduce");
      const double dt =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (rank == 0 && i >= 10) ms.push_back(dt);
    }
  };
  torch::set_num_threads(1);
  std::thread r0(rank_main, 0), r1(rank_main, 1);
  r0.join();
  r1.join();
  std::sort(ms.begin(), ms.end());
  std::printf(
      "all-reduce of %.2f MB between 2 ranks over 127.0.0.1 (Gloo): median %.2f ms, p90 %.2f ms (%d runs)\n",
      mb, ms[ms.size() / 2], ms[ms.size() * 9 / 10], iters);
  return 0;
}
