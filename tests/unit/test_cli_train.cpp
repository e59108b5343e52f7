// `rla train` / `rla eval` / `rla report` end to end through the binary, including Ctrl-C and
// SIGTERM.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "../support/test_util.h"
#include "rla/engine/checkpoint.h"
#include "rla/engine/run.h"
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
  auto m = rla::engine::load_for_inference(run.string(), "", {});
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
  fs::remove_all(full), fs::remove_all(cut);
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
