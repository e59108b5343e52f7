#pragma once
// Who may write a run folder, and what counts as a run in it. One process writes a run folder at
// a time: it holds an advisory flock(2) on <run>/.lock, a file that holds its pid while it writes
// (empty after it let go). The kernel drops the lock when the process ends, however it ends, so a
// crash never leaves a stale lock (only its pid in the file, which nobody reads unless locked).
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace rla::engine {

/// Thrown when another process holds a run folder's lock.
class RunFolderBusy : public std::runtime_error {
 public:
  RunFolderBusy(const std::string& run_dir, long pid);
  /// The holder's pid as its lock file says; 0 when the file does not say (yet).
  long pid() const { return pid_; }

 private:
  long pid_;
};

/// Thrown when a new run would start in a folder that already holds one (its files are listed).
/// `resumable`: resume works there (a last.ckpt, or an unfinished run that resume starts afresh);
/// false for a finished run whose last.ckpt is gone, where only overwrite helps.
class ExistingRun : public std::runtime_error {
 public:
  ExistingRun(const std::string& run_dir, std::vector<std::string> files, bool resumable);
  const std::string& run_dir() const { return run_dir_; }
  const std::vector<std::string>& files() const { return files_; }
  bool resumable() const { return resumable_; }

 private:
  std::string run_dir_;
  std::vector<std::string> files_;
  bool resumable_;
};

/// The lock file of a run folder: <run>/.lock.
std::string lock_path(const std::string& run_dir);

/// An exclusive lock on a run folder, held from construction until destruction (or the end of
/// the process). Movable, not copyable.
class RunFolderLock {
 public:
  /// Locks `run_dir` (which must exist), calls `check` (may be empty) while holding the lock, and
  /// then writes this process's pid into the lock file. Throws RunFolderBusy naming the holder's
  /// pid when another process (or another lock object of this one) holds it, std::runtime_error
  /// naming the file when it cannot be created; an exception from `check` releases the lock,
  /// leaving the lock file as it was, and propagates.
  explicit RunFolderLock(const std::string& run_dir, const std::function<void()>& check = {});
  ~RunFolderLock();
  RunFolderLock(RunFolderLock&& other) noexcept;
  RunFolderLock& operator=(RunFolderLock&& other) noexcept;
  RunFolderLock(const RunFolderLock&) = delete;
  RunFolderLock& operator=(const RunFolderLock&) = delete;

  const std::string& run_dir() const { return run_dir_; }

 private:
  void release() noexcept;
  std::string run_dir_;
  int fd_ = -1;
  bool wrote_pid_ = false;  ///< emptied again on release
};

/// The records of a run present in `run_dir`, by file name in a fixed order: config.json,
/// metrics.jsonl, result.json, last.ckpt, best.ckpt, best_model.pt. Empty for a missing or
/// empty folder (an empty metrics.jsonl alone does not count; the lock file never does).
std::vector<std::string> run_records(const std::string& run_dir);

/// Deletes every file a training run (and `rla quantize`) writes into `run_dir`: the records
/// above, best_model.json, training_curves.png, test_predictions.txt, model.int8.pt. Anything
/// else in the folder stays.
void remove_run_files(const std::string& run_dir);

/// What a training run does before it writes into `run_dir`: creates the folder, locks it
/// (RunFolderBusy) and checks what it holds. Without `resume` or `overwrite` a folder holding
/// run records is refused (ExistingRun, resumable); with `resume` a folder holding a finished
/// run (result.json) but no last.ckpt is refused (ExistingRun, not resumable), and one with
/// neither starts afresh. Nothing is deleted here: train() removes an overwritten run's files
/// once the new run has been built. Returns the lock, to be held while the run writes.
RunFolderLock claim_run_folder(const std::string& run_dir, bool resume, bool overwrite);

}  // namespace rla::engine
