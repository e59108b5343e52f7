// The run folder's writer lock and what counts as a run in it (engine/run_folder.h), in process.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "../support/test_util.h"
#include "rla/engine/run_folder.h"

namespace {

namespace fs = std::filesystem;
using namespace rla::engine;

void write(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string read(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A second lock on a locked folder (another open file description: as another process would
// hold it) is refused naming the holder; released, the folder locks again and the file is empty.
TEST(RunFolderLock, SecondWriterIsRefusedNamingTheHolder) {
  const auto dir = rla::test::scratch_dir("folder", "lock");
  const std::string me = std::to_string(::getpid());
  {
    RunFolderLock lock(dir.string());
    EXPECT_EQ(read(dir / ".lock"), me + "\n");
    try {
      RunFolderLock second(dir.string());
      FAIL() << "a second lock was granted";
    } catch (const RunFolderBusy& e) {
      EXPECT_EQ(e.pid(), ::getpid());
      EXPECT_EQ(std::string(e.what()), "run folder " + dir.string() + " is in use: process " + me +
                                           " is writing it (lock " + (dir / ".lock").string() + ")");
    }
    RunFolderLock moved = std::move(lock);  // still held
    EXPECT_THROW(RunFolderLock(dir.string()), RunFolderBusy);
  }
  EXPECT_EQ(read(dir / ".lock"), "");
  EXPECT_NO_THROW(RunFolderLock(dir.string()));
  fs::remove_all(dir);
}

TEST(RunFolderLock, ClaimRefusesAnExistingRunUnlessResumedOrOverwritten) {
  const auto dir = rla::test::scratch_dir("folder", "claim") / "run";
  EXPECT_NO_THROW(claim_run_folder(dir.string(), false, false));  // missing: created
  EXPECT_TRUE(fs::is_directory(dir));
  write(dir / "metrics.jsonl", "");  // an empty metrics file and other files are no run
  write(dir / "train.log", "x");
  EXPECT_EQ(run_records(dir.string()), std::vector<std::string>{});
  EXPECT_NO_THROW(claim_run_folder(dir.string(), false, false));

  write(dir / "config.json", "{}");
  write(dir / "metrics.jsonl", "{\"epoch\":1}\n");
  EXPECT_EQ(run_records(dir.string()), (std::vector<std::string>{"config.json", "metrics.jsonl"}));
  try {
    claim_run_folder(dir.string(), false, false);
    FAIL() << "an existing run was not refused";
  } catch (const ExistingRun& e) {
    EXPECT_TRUE(e.resumable());  // no last.ckpt and unfinished: resume starts it afresh
    EXPECT_EQ(e.files(), (std::vector<std::string>{"config.json", "metrics.jsonl"}));
    EXPECT_EQ(std::string(e.what()), "run folder " + dir.string() +
                                         " already holds a run (config.json, metrics.jsonl): set resume to "
                                         "continue it or overwrite to start over");
  }
  EXPECT_NO_THROW(claim_run_folder(dir.string(), true, false));
  EXPECT_NO_THROW(claim_run_folder(dir.string(), false, true));
  EXPECT_THROW(claim_run_folder(dir.string(), true, true), std::invalid_argument);

  write(dir / "result.json", "{}");  // finished, and its last.ckpt is gone
  try {
    claim_run_folder(dir.string(), true, false);
    FAIL() << "a finished run without last.ckpt was resumed";
  } catch (const ExistingRun& e) {
    EXPECT_FALSE(e.resumable());
  }
  write(dir / "last.ckpt", "x");
  EXPECT_NO_THROW(claim_run_folder(dir.string(), true, false));
  {
    RunFolderLock held(dir.string());  // in use beats everything else
    EXPECT_THROW(claim_run_folder(dir.string(), true, false), RunFolderBusy);
    EXPECT_THROW(claim_run_folder(dir.string(), false, false), RunFolderBusy);
    EXPECT_THROW(claim_run_folder(dir.string(), false, true), RunFolderBusy);
  }

  for (const char* f : {"best.ckpt", "best_model.pt", "best_model.json", "training_curves.png",
                        "test_predictions.txt", "model.int8.pt"})
    write(dir / f, "x");
  remove_run_files(dir.string());
  EXPECT_EQ(run_records(dir.string()), std::vector<std::string>{});
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{".lock", "train.log"}));
  fs::remove_all(dir.parent_path());
}

}  // namespace
