// `rla train` / `rla eval` / `rla report` end to end through the binary, including Ctrl-C and
// SIGTERM, two writers of one run folder, and a folder that already holds a run.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "../support/test_util.h"
#include "rla/engine/checkpoint.h"
#include "rla/engine/run.h"
#include "rla/inference/load.h"
#include "rla/models/network.h"

namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("rla_cli_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

std::vector<nlohmann::json> read_metrics(const fs::path& dir) {
  std::vector<nlohmann::json> out;
  std::ifstream in(dir / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every file of a folder (names relative to it) with its bytes.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = read_file(e.path());
  return files;
}

// `rla <args>` in a child process (its own pid: the shell execs it), output to `log`.
pid_t spawn_rla(const std::string& args, const fs::path& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string cmd = "exec " + std::string(RLA_BINARY) + " " + args + " >" + log.string() + " 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// The exit code of `pid`; minus the signal's number when a signal killed it; -1000 (and killed)
// when it still runs after `seconds`.
int wait_exit(pid_t pid, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (std::chrono::steady_clock::now() < end) {
    if (waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1000;
}

bool wait_for_file(const fs::path& path, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end && !fs::exists(path))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return fs::exists(path);
}

// Every parameter and buffer of a run's last.ckpt, and the position it was taken at.
struct Weights {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  rla::engine::TrainState state;
};
Weights last_weights(const fs::path& run) {
  rla::inference::LoadOptions o;
  o.execution = rla::inference::Execution::kEager;
  auto m = rla::inference::load_model(run.string(), o);
  Weights w;
  w.state = rla::engine::load_checkpoint((run / "last.ckpt").string(), *m.net, nullptr);
  w.tensors = rla::models::state_dict(*m.net);
  return w;
}

TEST(CliTrain, TrainThenEvalAgreeAndReportTabulates) {
  auto dir = fresh_dir("train");
  auto r = rla::test::run_rla(
      "--threads 1 train --model resnet20 --dataset synthetic --epochs 2 --batch-size 32 "
      "--lr 0.05 --quiet --out " +
      dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("test top-1"), std::string::npos) << r.output;
  auto metrics = read_metrics(dir);
  ASSERT_EQ(metrics.size(), 2u);
  for (const char* f : {"config.json", "last.ckpt", "best.ckpt"}) EXPECT_TRUE(fs::exists(dir / f)) << f;

  auto e = rla::test::run_rla("--threads 1 eval --json " + (dir / "last.ckpt").string());
  ASSERT_EQ(e.exit_code, 0) << e.output;
  auto j = nlohmann::json::parse(e.output);
  EXPECT_NEAR(j["top1"].get<double>(), metrics.back()["val_top1"].get<double>(), 1e-9);
  EXPECT_EQ(j["confusion"].size(), 10u);
  EXPECT_EQ(j["per_class"].size(), 10u);
  int64_t total = 0;
  for (const auto& row : j["confusion"])
    for (const auto& v : row) total += v.get<int64_t>();
  EXPECT_EQ(total, j["samples"].get<int64_t>());

  auto rep = rla::test::run_rla("report " + dir.string());
  ASSERT_EQ(rep.exit_code, 0) << rep.output;
  // 1-channel input: the stem has 2 * 16 * 9 = 288 fewer weights than the 3-channel 272,474.
  EXPECT_NE(rep.output.find("| resnet20 | 272,186"), std::string::npos) << rep.output;
}

TEST(CliTrain, CtrlCSavesAndResumeFinishes) {
  auto dir = fresh_dir("sigint");
  // Long enough (12 epochs) that the Ctrl-C, sent as soon as the first epoch is on disk, lands mid-run.
  const std::string args =
      "--threads 1 train --model rla_resnet20 --dataset synthetic --epochs 12 --batch-size 16 "
      "--schedule constant --quiet --out " +
      dir.string();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string cmd = std::string(RLA_BINARY) + " " + args + " >/dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  rla::test::wait_for_first_epoch(dir.string(), 60);
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  const int code = WEXITSTATUS(status);
  if (code == 0) GTEST_SKIP() << "the run finished before Ctrl-C arrived";
  EXPECT_EQ(code, 130);
  ASSERT_TRUE(fs::exists(dir / "last.ckpt"));
  auto r = rla::test::run_rla(args + " --resume");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_metrics(dir).size(), 12u);
}

// SIGTERM (a batch scheduler's stop) a third into epoch 2 of 2: exit 143 with a mid-epoch
// last.ckpt, and --resume ends with the weights and per-epoch metrics of a run never stopped,
// bit for bit (one thread, same kernels).
TEST(CliTrain, SigtermMidEpochThenResumeEqualsAnUninterruptedRun) {
  const auto full = fresh_dir("term_full"), cut = fresh_dir("term_cut");
  const std::string args =
      "--threads 1 train --model rla_resnet20 --dataset synthetic --epochs 2 --batch-size 16 --quiet --out ";
  const auto f = rla::test::run_rla(args + full.string());
  ASSERT_EQ(f.exit_code, 0) << f.output;

  const pid_t pid = spawn_rla(args + cut.string(), cut.string() + ".log");
  // best_model.json is the last file of epoch 1; epoch 2 then trains about as long as epoch 1 did.
  ASSERT_TRUE(wait_for_file(cut / "best_model.json", 120)) << read_file(cut.string() + ".log");
  const double epoch_seconds = read_metrics(cut).at(0)["seconds"].get<double>();
  std::this_thread::sleep_for(std::chrono::duration<double>(0.3 * epoch_seconds));
  kill(pid, SIGTERM);
  ASSERT_EQ(wait_exit(pid, 120), 143) << read_file(cut.string() + ".log");  // exited, not killed
  const auto stopped = last_weights(cut);
  EXPECT_EQ(stopped.state.epochs_done, 1);
  EXPECT_GT(stopped.state.next_batch, 0) << "the stop was not mid-epoch";
  EXPECT_LT(stopped.state.next_batch, 32);  // 512 images / 16

  const auto r = rla::test::run_rla(args + cut.string() + " --resume");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto a = read_metrics(full), b = read_metrics(cut);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (size_t e = 0; e < 2; ++e)
    for (const char* key : {"epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5"})
      EXPECT_EQ(a[e][key], b[e][key]) << "epoch " << e + 1 << " " << key;
  const auto wa = last_weights(full), wb = last_weights(cut);
  ASSERT_EQ(wa.tensors.size(), wb.tensors.size());
  for (size_t i = 0; i < wa.tensors.size(); ++i)
    EXPECT_TRUE(torch::equal(wa.tensors[i].second, wb.tensors[i].second)) << wa.tensors[i].first;
  EXPECT_EQ(read_file(full / "result.json"), read_file(cut / "result.json"));
  fs::remove_all(full), fs::remove_all(cut), fs::remove(cut.string() + ".log");
}

// Two trainers started together on one folder: one trains, the other stops at once naming the
// first one's pid; so do a --resume and `rla quantize` into the folder. A killed writer leaves no
// stale lock: --resume then finishes the run, and metrics.jsonl holds each epoch once.
TEST(CliTrain, ConcurrentTrainersOnOneFolderOneRuns) {
  const auto dir = fresh_dir("two_writers");
  const std::string args =
      "--threads 1 train --model rla_resnet20 --dataset synthetic --epochs 6 --batch-size 16 --quiet --out " +
      dir.string();
  // Six epochs: the winner must still be training when --resume and `rla quantize` try the folder
  // after its first epoch (with three, a fast machine had finished by then and quantize went ahead).
  const fs::path log_a = dir.string() + ".a.log", log_b = dir.string() + ".b.log";
  const pid_t a = spawn_rla(args, log_a), b = spawn_rla(args, log_b);
  // The loser stops before it loads anything; the winner is still training then.
  pid_t winner = -1, loser = -1;
  int status = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (loser < 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
    for (const pid_t p : {a, b})
      if (loser < 0 && waitpid(p, &status, WNOHANG) == p) loser = p, winner = p == a ? b : a;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (loser < 0) kill(a, SIGKILL), kill(b, SIGKILL), waitpid(a, &status, 0), waitpid(b, &status, 0);
  ASSERT_NE(loser, -1) << "neither trainer stopped";
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_LT(seconds, 20);
  const auto message = read_file(loser == a ? log_a : log_b);
  const auto holder = "process " + std::to_string(winner) + " is writing it";
  EXPECT_NE(message.find(holder), std::string::npos) << message;
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 1) << message;
  EXPECT_EQ(waitpid(winner, &status, WNOHANG), 0) << "the winner is not training";
  EXPECT_EQ(read_file(dir / ".lock"), std::to_string(winner) + "\n");

  ASSERT_TRUE(rla::test::wait_for_first_epoch(dir.string(), 120));
  const auto resume = rla::test::run_rla(args + " --resume");
  EXPECT_EQ(resume.exit_code, 1);
  EXPECT_NE(resume.output.find(holder), std::string::npos) << resume.output;
  const auto quantize = rla::test::run_rla("quantize " + dir.string());
  ASSERT_EQ(waitpid(winner, &status, WNOHANG), 0) << "the winner finished before the refusals were tried";
  EXPECT_EQ(quantize.exit_code, 1);
  EXPECT_NE(quantize.output.find(holder), std::string::npos) << quantize.output;

  kill(winner, SIGKILL);  // a crash: the kernel drops its lock
  waitpid(winner, &status, 0);
  const auto finish = rla::test::run_rla(args + " --resume");
  ASSERT_EQ(finish.exit_code, 0) << finish.output;
  std::vector<int64_t> epochs;
  for (const auto& m : read_metrics(dir)) epochs.push_back(m["epoch"].get<int64_t>());
  EXPECT_EQ(epochs, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  fs::remove_all(dir), fs::remove(log_a), fs::remove(log_b);
}

// A finished run is refused without --resume / --overwrite and left byte for byte as it was;
// --overwrite trains anew (the old run's files gone); --resume in a missing folder starts a run;
// a finished run without last.ckpt cannot be resumed.
TEST(CliTrain, FinishedRunIsRefusedUnchangedAndOverwriteStartsOver) {
  const auto dir = fresh_dir("finished");
  const std::string args =
      "--threads 1 train --model resnet20 --dataset synthetic --limit-train 128 --limit-test 64 --batch-size "
      "32 "
      "--quiet "
      "--out " +
      dir.string();
  const auto first = rla::test::run_rla(args + " --epochs 1 --val-size 32 --resume");  // missing folder
  ASSERT_EQ(first.exit_code, 0) << first.output;
  ASSERT_TRUE(fs::exists(dir / "result.json"));
  ASSERT_TRUE(fs::exists(dir / "test_predictions.txt"));
  const auto before = snapshot(dir);

  const auto refused = rla::test::run_rla(args + " --epochs 2");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.output.find("already holds a run (config.json, metrics.jsonl, result.json, last.ckpt, "
                                "best.ckpt, best_model.pt): continue it with --resume or start over with "
                                "--overwrite"),
            std::string::npos)
      << refused.output;
  EXPECT_EQ(std::count(refused.output.begin(), refused.output.end(), '\n'), 1) << refused.output;
  const auto after = snapshot(dir);
  EXPECT_EQ(before.size(), after.size());
  for (const auto& [name, bytes] : before) {
    ASSERT_TRUE(after.count(name)) << name << " was removed";
    EXPECT_TRUE(after.at(name) == bytes) << name << " changed";
  }

  const auto both = rla::test::run_rla(args + " --resume --overwrite");
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.output.find("excludes"), std::string::npos) << both.output;

  const auto again = rla::test::run_rla(args + " --epochs 2 --overwrite");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  const auto metrics = read_metrics(dir);
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_EQ(metrics[1]["epoch"].get<int64_t>(), 2);
  EXPECT_EQ(rla::engine::read_train_config(dir.string()).run.epochs, 2);
  EXPECT_FALSE(fs::exists(dir / "test_predictions.txt"));  // the old run's (it had a validation split)
  EXPECT_EQ(rla::engine::read_result(dir.string())->epochs, 2);

  fs::remove(dir / "last.ckpt");  // as in a fresh clone: weights are not committed
  const auto gone = rla::test::run_rla(args + " --epochs 2 --resume");
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.output.find("no last.ckpt to continue from: start over with --overwrite"), std::string::npos)
      << gone.output;
  fs::remove_all(dir);
}

TEST(CliTrain, BadInputIsOneLine) {
  for (const std::string bad :
       {"train --dataset nosuch --quiet", "train --model nosuch --dataset synthetic",
        "train --dataset mnist --data-root /nonexistent --quiet", "train --dataset synthetic --lr -1 --quiet",
        "train --epochs x", "train --no-such-flag", "eval /nonexistent.ckpt", "eval"}) {
    const bool train = bad.rfind("train", 0) == 0;
    auto r = rla::test::run_rla("--threads 1 " + bad + (train ? " --out " + fresh_dir("bad").string() : ""));
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << bad << "\n" << r.output;
  }
}

}  // namespace
