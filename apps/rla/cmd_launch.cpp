// `rla launch --nproc N [--master-addr A --master-port P --nnodes M --node-rank R] -- train ...`:
// starts N local processes of this program for data-parallel training (like torchrun).
#include <filesystem>

#include "commands.h"
#include "options.h"
#include "rla/distributed/launcher.h"

namespace rla::app {

Command add_launch_command(CLI::App& root) {
  auto cfg = std::make_shared<distributed::LaunchConfig>();
  auto* cmd = root.add_subcommand(
      "launch",
      "Start N local processes of a data-parallel command (torchrun-style RANK/WORLD_SIZE/MASTER_*)");
  cmd->add_option("--nproc,--nproc-per-node", cfg->nproc, "Processes on this machine")->required();
  cmd->add_option("--nnodes", cfg->nnodes, "Machines taking part")->capture_default_str();
  cmd->add_option("--node-rank", cfg->node_rank, "This machine's index, 0..nnodes-1")->capture_default_str();
  cmd->add_option("--master-addr", cfg->master_addr, "Address of the machine running rank 0")
      ->capture_default_str();
  cmd->add_option("--master-port", cfg->master_port, "Free TCP port on the master")->capture_default_str();
  cmd->add_option("--kill-grace", cfg->kill_grace_s, "Seconds between SIGTERM and SIGKILL after a failure")
      ->check(kNonNegative)
      ->capture_default_str();
  cmd->add_option("command", cfg->args,
                  "The rla command every process runs, after --, e.g. -- train --epochs 1")
      ->required();
  return {cmd, [cfg]() {
            cfg->executable = std::filesystem::read_symlink("/proc/self/exe").string();  // this very binary
            cfg->threads_option = "--threads";  // rla's root option: each process gets its share of the cores
            return distributed::launch(*cfg);
          }};
}

}  // namespace rla::app
