// `rla train` / `rla eval` / `rla report` end to end through the binary, including Ctrl-C.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "../support/test_util.h"

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
