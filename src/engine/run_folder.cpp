#include "rla/engine/run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>

#include <fmt/format.h>

#include "rla/engine/run.h"

namespace rla::engine {
namespace {

namespace fs = std::filesystem;

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The pid a lock file holds; 0 when it is empty (its holder has not written it yet) or unreadable.
long read_pid(int fd) {
  char buf[32] = {};
  const ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  return n > 0 ? std::strtol(buf, nullptr, 10) : 0;
}

// The pid in the lock file `fd` of a folder whose lock another process holds, read a few times
// over 1 s when it is still empty (its holder writes it right after it locks).
long holder_pid(int fd) {
  long pid = read_pid(fd);
  for (int attempt = 0; pid <= 0 && attempt < 50; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    pid = read_pid(fd);
  }
  return pid;
}

std::string existing_run_message(const std::string& run_dir, const std::vector<std::string>& files,
                                 bool resumable) {
  if (resumable)
    return fmt::format(
        "run folder {} already holds a run ({}): set resume to continue it or overwrite to start over",
        run_dir, join(files));
  return fmt::format(
      "run folder {} holds a finished run ({}) and no last.ckpt to continue from: set overwrite to start "
      "over",
      run_dir, join(files));
}

}  // namespace

RunFolderBusy::RunFolderBusy(const std::string& run_dir, long pid)
    : std::runtime_error(pid > 0 ? fmt::format("run folder {} is in use: process {} is writing it (lock {})",
                                               run_dir, pid, lock_path(run_dir))
                                 : fmt::format("run folder {} is in use by another process (lock {})",
                                               run_dir, lock_path(run_dir))),
      pid_(pid) {}

ExistingRun::ExistingRun(const std::string& run_dir, std::vector<std::string> files, bool resumable)
    : std::runtime_error(existing_run_message(run_dir, files, resumable)),
      run_dir_(run_dir),
      files_(std::move(files)),
      resumable_(resumable) {}

std::string lock_path(const std::string& run_dir) {
  return (fs::path(run_dir) / ".lock").string();
}

RunFolderLock::RunFolderLock(const std::string& run_dir, const std::function<void()>& check)
    : run_dir_(run_dir) {
  const auto path = lock_path(run_dir);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error(
        fmt::format("{}: cannot create the run folder's lock file: {}", path, std::strerror(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const long holder = err == EWOULDBLOCK ? holder_pid(fd_) : 0;
    release();
    if (err == EWOULDBLOCK) throw RunFolderBusy(run_dir, holder);
    throw std::runtime_error(fmt::format("{}: cannot lock the run folder: {}", path, std::strerror(err)));
  }
  if (check) {
    try {
      check();
    } catch (...) {
      release();  // the lock file as it was
      throw;
    }
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    const int err = errno;
    release();
    throw std::runtime_error(fmt::format("{}: cannot write the lock file: {}", path, std::strerror(err)));
  }
  wrote_pid_ = true;
}

RunFolderLock::~RunFolderLock() {
  release();
}

RunFolderLock::RunFolderLock(RunFolderLock&& other) noexcept
    : run_dir_(std::move(other.run_dir_)), fd_(other.fd_), wrote_pid_(other.wrote_pid_) {
  other.fd_ = -1;
  other.wrote_pid_ = false;
}

RunFolderLock& RunFolderLock::operator=(RunFolderLock&& other) noexcept {
  if (this != &other) {
    release();
    run_dir_ = std::move(other.run_dir_);
    fd_ = other.fd_;
    wrote_pid_ = other.wrote_pid_;
    other.fd_ = -1;
    other.wrote_pid_ = false;
  }
  return *this;
}

void RunFolderLock::release() noexcept {
  if (fd_ < 0) return;
  // An empty lock file: nobody writes the folder (a crashed writer's pid stays, unlocked).
  if (wrote_pid_) {
    const int best_effort = ::ftruncate(fd_, 0);
    (void)best_effort;
  }
  ::close(fd_);  // drops the lock; the file stays (removing it would race with the next writer)
  fd_ = -1;
  wrote_pid_ = false;
}

std::vector<std::string> run_records(const std::string& run_dir) {
  std::vector<std::string> found;
  const fs::path dir(run_dir);
  std::error_code ec;
  for (const auto& path :
       {config_path(run_dir), metrics_path(run_dir), result_path(run_dir), last_checkpoint_path(run_dir),
        best_checkpoint_path(run_dir), (dir / "best_model.pt").string()}) {
    if (!fs::is_regular_file(path, ec)) continue;
    if (path == metrics_path(run_dir) && fs::file_size(path, ec) == 0) continue;
    found.push_back(fs::path(path).filename().string());
  }
  return found;
}

void remove_run_files(const std::string& run_dir) {
  const fs::path dir(run_dir);
  for (const auto& path :
       {config_path(run_dir), metrics_path(run_dir), result_path(run_dir), last_checkpoint_path(run_dir),
        best_checkpoint_path(run_dir), test_predictions_path(run_dir), (dir / "best_model.pt").string(),
        (dir / "best_model.json").string(), (dir / "training_curves.png").string(),
        (dir / "model.int8.pt").string()}) {
    std::error_code ec;
    fs::remove(path, ec);
    if (ec) throw std::runtime_error(fmt::format("{}: cannot delete it: {}", path, ec.message()));
  }
}

RunFolderLock claim_run_folder(const std::string& run_dir, bool resume, bool overwrite) {
  if (resume && overwrite)
    throw std::invalid_argument("resume and overwrite contradict each other: continue the run or start over");
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec)
    throw std::runtime_error(fmt::format("{}: cannot create the run folder: {}", run_dir, ec.message()));
  if (overwrite) return RunFolderLock(run_dir);
  // A finished run whose last.ckpt is gone (weights are not committed) cannot be continued; any
  // other folder can (one without last.ckpt starts afresh, as a run stopped before its first
  // checkpoint must).
  const auto refuse_existing = [&] {
    const auto records = run_records(run_dir);
    const bool resumable = fs::exists(last_checkpoint_path(run_dir)) || !fs::exists(result_path(run_dir));
    if (!resume && !records.empty()) throw ExistingRun(run_dir, records, resumable);
    if (resume && !resumable) throw ExistingRun(run_dir, records, false);
  };
  // A folder in use is refused naming its writer, whatever it holds; one that holds a run is
  // refused while locked, so that no other writer can start one meanwhile, and left exactly as
  // it was (the lock file is created only when missing, and the pid written only on success).
  if (!fs::exists(lock_path(run_dir))) refuse_existing();
  return RunFolderLock(run_dir, refuse_existing);
}

}  // namespace rla::engine
