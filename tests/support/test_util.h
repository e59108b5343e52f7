#pragma once
// Helpers shared by the test binaries: fixture paths and running the CLI.
#include <cstdio>
#include <string>

namespace rla::test {

inline std::string fixture(const std::string& name) {
  return std::string(RLA_FIXTURES_DIR) + "/" + name;
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr together
};

/// Runs the built `rla` binary with `args` (a shell-quoted string).
inline CommandResult run_rla(const std::string& args) {
  CommandResult r;
  const std::string cmd = std::string(RLA_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace rla::test
