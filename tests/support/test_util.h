#pragma once
// Helpers shared by the test binaries: fixture paths and running the CLI.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>

#include <unistd.h>

namespace rla::test {

/// The system Python (Debian's python3-torch: torch 1.13), for the checks where Python reads what
/// C++ wrote. Never a dependency of the tool; a test skips what it cannot import.
inline constexpr const char* kPython = "/usr/bin/python3";

/// Whether kPython imports `modules` (one import statement's list, e.g. "onnx, cv2"); remembered.
inline bool python_has(const std::string& modules) {
  static std::map<std::string, bool> known;
  const auto found = known.find(modules);
  if (found != known.end()) return found->second;
  const auto cmd = std::string(kPython) + " -c 'import " + modules + "' >/dev/null 2>&1";
  return known[modules] = std::system(cmd.c_str()) == 0;
}

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

/// Waits up to `seconds` for the training run in `run_dir` to finish its first epoch (its
/// metrics.jsonl, written atomically, is non-empty); true if it did.
inline bool wait_for_first_epoch(const std::string& run_dir, double seconds) {
  const auto metrics = std::filesystem::path(run_dir) / "metrics.jsonl";
  const auto written = [&metrics] {
    std::error_code ec;
    return std::filesystem::file_size(metrics, ec) > 0 && !ec;
  };
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until && !written())
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return written();
}

/// A fresh, empty folder under the system temp folder, unique to this process:
/// <tmp>/rla_<prefix>_<name>_<pid>.
inline std::filesystem::path scratch_dir(const std::string& prefix, const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("rla_" + prefix + "_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace rla::test
