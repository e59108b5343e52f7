// Data-parallel training on c10d/Gloo over 127.0.0.1: gradient averaging against a one-process
// reference (in-process, two threads as two ranks), and whole `rla train` runs in 2 processes:
// identical parameters on every rank, 2 x batch b against 1 x batch 2b, faults within the timeout,
// resume with another world size, SIGTERM to the launcher or to one rank, a refused run folder.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "../support/test_util.h"
#include "rla/distributed/data_parallel.h"
#include "rla/engine/checkpoint.h"
#include "rla/engine/run.h"
#include "rla/models/registry.h"

namespace {

namespace fs = std::filesystem;
using namespace rla;
using Clock = std::chrono::steady_clock;

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

std::string temp_dir(const std::string& name) {
  const auto d = fs::temp_directory_path() / ("rla_dist_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// One `rla` process started with extra environment variables; output goes to `log`.
struct Proc {
  pid_t pid = -1;
  std::string log;
};

Proc spawn_rla(const std::vector<std::string>& args, const std::vector<std::string>& env_extra,
               const std::string& log) {
  std::vector<std::string> argv = {RLA_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  env.insert(env.end(), env_extra.begin(), env_extra.end());
  std::vector<char*> av, ev;
  for (auto& s : argv) av.push_back(s.data());
  for (auto& s : env) ev.push_back(s.data());
  av.push_back(nullptr);
  ev.push_back(nullptr);
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  Proc p{fork(), log};
  if (p.pid == 0) {
    if (fd < 0) _exit(126);
    dup2(fd, 1);
    dup2(fd, 2);
    execve(av[0], av.data(), ev.data());
    _exit(127);
  }
  if (fd >= 0) close(fd);
  return p;
}

/// Waits up to `seconds`; kills the process and returns -1 when it takes longer.
int wait_for(Proc& p, double seconds) {
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (Clock::now() < end) {
    if (waitpid(p.pid, &status, WNOHANG) == p.pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(p.pid, SIGKILL);
  waitpid(p.pid, &status, 0);
  return -1;
}

/// `rla train` on 192 synthetic images (6 steps of 32 per epoch), 64 test images.
std::vector<std::string> train_args(const std::string& out, int64_t batch, int epochs = 1,
                                    const std::string& extra = "") {
  std::vector<std::string> a = {"--threads",
                                "1",
                                "train",
                                "--dataset",
                                "synthetic",
                                "--limit-train",
                                "192",
                                "--limit-test",
                                "64",
                                "--epochs",
                                std::to_string(epochs),
                                "--batch-size",
                                std::to_string(batch),
                                "--workers",
                                "0",
                                "-q",
                                "--out",
                                out};
  std::istringstream more(extra);
  for (std::string w; more >> w;) a.push_back(w);
  return a;
}

/// The same on `n` training images (at most 512, all of the synthetic set: n / 32 steps per
/// epoch with two ranks of batch 16).
std::vector<std::string> train_args_on(size_t n, const std::string& out, int epochs,
                                       const std::string& extra = "") {
  auto a = train_args(out, 16, epochs, extra);
  *(std::find(a.begin(), a.end(), "--limit-train") + 1) = std::to_string(n);
  return a;
}

std::vector<std::string> launch_args(const std::vector<std::string>& train) {
  std::vector<std::string> a = {"launch", "--nproc", "2", "--master-port", std::to_string(free_port()), "--"};
  a.insert(a.end(), train.begin(), train.end());
  return a;
}

std::string joined(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += a + " ";
  return s;
}

/// Waits up to `seconds` for `path` to exist.
bool wait_for_file(const std::string& path, double seconds) {
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end && !fs::exists(path)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return fs::exists(path);
}

/// The optimiser steps rank `rank` reports in its closing summary; -1 when it printed none.
int64_t steps_of(const std::string& output, int rank) {
  std::smatch m;
  const std::regex re("rank " + std::to_string(rank) + "/\\d+: (\\d+) steps");
  return std::regex_search(output, m, re) ? std::stoll(m[1].str()) : -1;
}

std::vector<std::string> rank_env(int rank, int world, int port) {
  return {"RANK=" + std::to_string(rank), "WORLD_SIZE=" + std::to_string(world),
          "LOCAL_RANK=" + std::to_string(rank), "MASTER_ADDR=127.0.0.1",
          "MASTER_PORT=" + std::to_string(port)};
}

std::string fingerprint(const std::string& output, int rank) {
  std::smatch m;
  const std::regex re("rank " + std::to_string(rank) + "/\\d+: .*parameter fingerprint (\\S+)");
  return std::regex_search(output, m, re) ? m[1].str() : "";
}

models::Network load_resnet20(const std::string& ckpt) {
  models::ModelConfig mc;
  mc.num_classes = 10;
  mc.in_channels = 1;
  auto net = models::create_model("rla_resnet20", mc);
  engine::load_checkpoint(ckpt, *net, nullptr);
  return net;
}

// ---- gradient averaging, two ranks as two threads of this process ----

class TwoRankGradients : public ::testing::TestWithParam<std::pair<bool, double>> {};

// Eval-mode BatchNorm (running statistics) makes every sample's loss independent of the rest of
// its batch, so 2 ranks x 8 samples must give the gradient of 1 x 16 to float rounding.
TEST_P(TwoRankGradients, AveragedGradientsEqualTheFullBatchGradient) {
  const auto [overlap, bucket_mb] = GetParam();
  torch::manual_seed(3);
  auto images = torch::randn({16, 1, 28, 28});
  auto labels = torch::randint(0, 10, {16}, torch::kLong);
  models::ModelConfig mc;
  mc.num_classes = 10;
  mc.in_channels = 1;
  torch::manual_seed(7);
  auto reference = models::create_model("rla_resnet20", mc);
  reference->eval();
  torch::nn::functional::cross_entropy(reference->forward(images), labels).backward();
  const auto ref_params = models::unique_parameters(*reference);

  const int port = free_port();
  std::vector<std::vector<torch::Tensor>> grads(2);
  std::vector<std::string> errors(2);
  auto rank_main = [&](int rank) {
    try {
      distributed::DistConfig dc;
      dc.rank = rank, dc.world_size = 2, dc.master_port = port, dc.timeout_s = 30;
      distributed::ProcessGroup pg(dc);
      torch::manual_seed(100 + rank);  // different init: on_ready must broadcast rank 0's
      auto net = models::create_model("rla_resnet20", mc);
      if (rank == 0) {
        torch::NoGradGuard ng;
        auto src = models::state_dict(*reference);
        auto dst = models::state_dict(*net);
        for (size_t i = 0; i < src.size(); ++i) dst[i].second.copy_(src[i].second);
      }
      distributed::DataParallelOptions o;
      o.overlap = overlap;
      o.bucket_mb = bucket_mb;
      auto hooks = distributed::make_data_parallel_hooks(pg, {}, o);
      hooks.on_ready(*net, nullptr);
      net->eval();
      auto params = models::unique_parameters(*net);
      for (auto& p : params) p.mutable_grad() = torch::zeros_like(p);
      auto x = images.narrow(0, rank * 8, 8), y = labels.narrow(0, rank * 8, 8);
      torch::nn::functional::cross_entropy(net->forward(x), y).backward();
      hooks.after_backward(params);
      for (auto& p : params) grads[rank].push_back(p.grad().clone());
    } catch (const std::exception& e) {
      errors[rank] = e.what();
    }
  };
  std::thread t0(rank_main, 0), t1(rank_main, 1);
  t0.join();
  t1.join();
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  ASSERT_EQ(grads[0].size(), ref_params.size());
  for (size_t i = 0; i < ref_params.size(); ++i) {
    EXPECT_TRUE(torch::equal(grads[0][i], grads[1][i])) << "parameter " << i << " differs between ranks";
    const double scale = ref_params[i].grad().abs().max().item<double>() + 1e-6;
    EXPECT_LT((grads[0][i] - ref_params[i].grad()).abs().max().item<double>(), 1e-4 * scale)
        << "parameter " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Buckets, TwoRankGradients,
                         ::testing::Values(std::make_pair(true, 25.0), std::make_pair(false, 25.0),
                                           std::make_pair(true, 0.02)));

// ---- whole runs of `rla train` in two processes ----

TEST(DataParallelRun, LaunchTwoProcessesEndWithIdenticalParameters) {
  const auto out = temp_dir("launch");
  std::string args = "launch --nproc 2 --master-port " + std::to_string(free_port()) + " -- ";
  for (const auto& a : train_args(out, 16)) args += a + " ";
  const auto r = test::run_rla(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto f0 = fingerprint(r.output, 0), f1 = fingerprint(r.output, 1);
  ASSERT_FALSE(f0.empty()) << r.output;
  EXPECT_EQ(f0, f1) << r.output;  // bit-identical parameters after 6 steps
  EXPECT_TRUE(fs::exists(out + "/last.ckpt"));
  const auto metrics = read_all(out + "/metrics.jsonl");
  EXPECT_NE(metrics.find("\"epoch\":1"), std::string::npos) << metrics;
  fs::remove_all(out);
}

// engine::train in 2 ranks x batch 16 against 1 process x batch 32: step by step they see the same
// 32 images (the loader shards each epoch's order by rank, interleaved). With BatchNorm frozen
// (eval mode: running statistics, so each sample's loss is independent of its batch) the final
// weights agree up to float rounding: the averaged gradient sums in another order, and 12 steps of
// Nesterov SGD amplify that to ~5e-4 of how far the weights moved (measured); we allow 2e-3. A real
// fault (a bucket not reduced, sum instead of mean, wrong shards) gives differences of order 1. The ranks are
// two threads here: both start from the same
// --init-from checkpoint, so the shared global RNG cannot make their models differ.
TEST(DataParallelRun, TwoRanksMatchOneProcessWithDoubleBatch) {
  const auto dir = temp_dir("match");
  models::ModelConfig mc;
  mc.num_classes = 10;
  mc.in_channels = 1;
  // Zero-initialised branches keep 12 steps at lr 0.1 with BN frozen at its initial statistics
  // stable (without, the activations grow with depth and the loss overflows).
  mc.zero_init_residual = true;
  torch::manual_seed(11);
  engine::save_checkpoint(dir + "/init.ckpt", *models::create_model("rla_resnet20", mc), nullptr, {});
  engine::TrainConfig cfg;
  cfg.data.dataset = "synthetic";
  cfg.data.limit_train = 192;
  cfg.data.limit_test = 64;
  cfg.run.epochs = 2;  // 12 steps
  cfg.run.workers = 0;
  cfg.run.threads = 1;
  cfg.run.quiet = true;
  cfg.run.init_checkpoint = dir + "/init.ckpt";
  cfg.run.freeze_bn = true;  // batch statistics would differ between 1 x 32 and 2 x 16
  engine::TrainConfig one = cfg;
  one.run.batch_size = 32;
  one.run.out_dir = dir + "/one";
  engine::train(one);

  engine::TrainConfig two = cfg;
  two.run.batch_size = 16;
  two.run.out_dir = dir + "/two";
  const int port = free_port();
  std::vector<std::string> errors(2);
  auto rank_main = [&](int rank) {
    try {
      distributed::DistConfig dc;
      dc.rank = rank, dc.world_size = 2, dc.master_port = port, dc.timeout_s = 60;
      distributed::ProcessGroup pg(dc);
      engine::train(two, distributed::make_data_parallel_hooks(pg, {}));
    } catch (const std::exception& e) {
      errors[rank] = e.what();
    }
  };
  std::thread t0(rank_main, 0), t1(rank_main, 1);
  t0.join();
  t1.join();
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  auto a = load_resnet20(dir + "/one/last.ckpt"), b = load_resnet20(dir + "/two/last.ckpt"),
       init = load_resnet20(dir + "/init.ckpt");
  const auto pa = models::unique_parameters(*a), pb = models::unique_parameters(*b),
             p0 = models::unique_parameters(*init);
  double moved = 0, diff = 0;
  for (size_t i = 0; i < pa.size(); ++i) {
    moved = std::max(moved, (pa[i] - p0[i]).abs().max().item<double>());
    diff = std::max(diff, (pa[i] - pb[i]).abs().max().item<double>());
  }
  std::cout << "max |w(2x16) - w(1x32)| = " << diff << ", max |w(1x32) - w(init)| = " << moved << "\n";
  EXPECT_GT(moved, 1e-2);         // training did move the weights
  EXPECT_LT(diff, 2e-3 * moved);  // and both runs moved them the same way
  // The metrics of both runs count the same images.
  const auto ma = read_all(dir + "/one/metrics.jsonl"), mb = read_all(dir + "/two/metrics.jsonl");
  EXPECT_NE(ma.find("\"epoch\":2"), std::string::npos);
  EXPECT_NE(mb.find("\"epoch\":2"), std::string::npos);
  fs::remove_all(dir);
}

TEST(DataParallelFaults, KilledRankEndsTheOtherWithinTheTimeout) {
  const auto out = temp_dir("kill");
  const int port = free_port();
  const auto args = train_args(out, 16, 100, "--dist-timeout 10");
  auto r0 = spawn_rla(args, rank_env(0, 2, port), out + "/rank0.log");
  auto r1 = spawn_rla(args, rank_env(1, 2, port), out + "/rank1.log");
  // Wait until training runs (rank 0 has written its first epoch), then kill rank 1.
  ASSERT_TRUE(test::wait_for_first_epoch(out, 60)) << read_all(r0.log);
  kill(r1.pid, SIGKILL);
  const auto t0 = Clock::now();
  const int code = wait_for(r0, 25);
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  wait_for(r1, 5);
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1) << "rank 0 still ran 25 s after rank 1 died";
  EXPECT_LT(elapsed, 10 + 5);
  const auto log = read_all(r0.log);
  EXPECT_NE(log.find("rank 0/2"), std::string::npos) << log;
  EXPECT_NO_THROW(load_resnet20(out + "/last.ckpt"));  // the last checkpoint stays loadable
  fs::remove_all(out);
}

TEST(DataParallelFaults, HungRankTimesOutTheOther) {
  const auto out = temp_dir("hang");
  const int port = free_port();
  const auto args = train_args(out, 16, 100, "--dist-timeout 4");
  auto r0 = spawn_rla(args, rank_env(0, 2, port), out + "/rank0.log");
  auto r1 = spawn_rla(args, rank_env(1, 2, port), out + "/rank1.log");
  test::wait_for_first_epoch(out, 60);
  kill(r1.pid, SIGSTOP);  // alive but silent: only the timeout can end rank 0
  const auto t0 = Clock::now();
  const int code = wait_for(r0, 20);
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  kill(r1.pid, SIGKILL);
  wait_for(r1, 5);
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1) << "rank 0 hung";
  EXPECT_LT(elapsed, 4 + 6);
  fs::remove_all(out);
}

TEST(DataParallelFaults, UnreachableMasterIsAnErrorWithinTheTimeout) {
  const auto out = temp_dir("nomaster");
  auto r1 =
      spawn_rla(train_args(out, 16, 1, "--dist-timeout 3"), rank_env(1, 2, free_port()), out + "/rank1.log");
  const auto t0 = Clock::now();
  const int code = wait_for(r1, 20);
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto log = read_all(r1.log);
  EXPECT_EQ(code, 1) << log;
  EXPECT_LT(elapsed, 3 + 5);
  EXPECT_NE(log.find("rendezvous"), std::string::npos) << log;
  fs::remove_all(out);
}

TEST(DataParallelRun, ResumeWithAnotherWorldSize) {
  const auto out = temp_dir("resume");
  std::string args = "launch --nproc 2 --master-port " + std::to_string(free_port()) + " -- ";
  for (const auto& a : train_args(out, 16)) args += a + " ";
  const auto r = test::run_rla(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string resume;
  for (const auto& a : train_args(out, 32, 2, "--resume")) resume += a + " ";
  const auto r2 = test::run_rla(resume);  // one process continues the two-process run
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  const auto metrics = read_all(out + "/metrics.jsonl");
  EXPECT_NE(metrics.find("\"epoch\":2"), std::string::npos) << metrics;
  fs::remove_all(out);
}

// Two ranks with the modern recipe's random augmentations (TrivialAugmentWide, RandomErasing,
// Mixup/CutMix) and a weight average: stopped inside the second epoch and resumed, the run ends
// where an uninterrupted one does (each rank draws from generators keyed by seed, epoch, batch
// and rank, never from state lost at the stop).
TEST(DataParallelRun, ResumedTwoRankRunDrawsTheSameAugmentations) {
  const std::string opts =
      "--auto-augment trivialaugment --random-erasing 0.25 --mixup 0.2 --cutmix 1.0 --ema-decay 0.99 "
      "--ema-steps 2 --clip-grad-norm 2";
  const auto full = temp_dir("aug_full"), cut = temp_dir("aug_cut");
  auto launch = [&](const std::string& out, const std::string& extra) {
    std::string args = "launch --nproc 2 --master-port " + std::to_string(free_port()) + " -- ";
    for (const auto& a : train_args(out, 16, 2, opts + " " + extra)) args += a + " ";
    return test::run_rla(args);
  };
  const auto f = launch(full, "");
  ASSERT_EQ(f.exit_code, 0) << f.output;
  launch(cut, "--max-steps 8");  // 6 steps per epoch: stops inside epoch 2
  ASSERT_TRUE(fs::exists(cut + "/last.ckpt"));
  ASSERT_EQ(rla::engine::read_metrics(cut).size(), 1u);
  const auto r = launch(cut, "--resume");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto a = rla::engine::read_metrics(full), b = rla::engine::read_metrics(cut);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (size_t e = 0; e < 2; ++e) {
    EXPECT_NEAR(a[e].train_loss, b[e].train_loss, 1e-5) << "epoch " << e + 1;
    EXPECT_NEAR(a[e].val_loss, b[e].val_loss, 1e-5) << "epoch " << e + 1;
    ASSERT_TRUE(a[e].ema_val_loss && b[e].ema_val_loss);
    EXPECT_NEAR(*a[e].ema_val_loss, *b[e].ema_val_loss, 1e-5) << "epoch " << e + 1;
  }
  fs::remove_all(full);
  fs::remove_all(cut);
}

// SIGTERM (what a batch scheduler sends) to `rla launch` a third into epoch 2 of 2: the
// launcher forwards it, both ranks stop after the same step (equal step counts and, checked by
// the closing summary, equal parameters), rank 0 writes one mid-epoch checkpoint, and the
// launcher exits 143. Resumed, the run ends with the weights of a run never stopped, bit for bit,
// and the same metrics (the epoch's training loss to rounding: the stopped epoch's partial sums
// are added in another order).
TEST(DataParallelRun, SigtermToTheLauncherThenResumeEqualsAnUninterruptedRun) {
  const auto full = temp_dir("term_full"), cut = temp_dir("term_cut");
  const auto f = test::run_rla(joined(launch_args(train_args_on(512, full, 2))));
  ASSERT_EQ(f.exit_code, 0) << f.output;

  auto launcher = spawn_rla(launch_args(train_args_on(512, cut, 2)), {}, cut + "/launch.log");
  ASSERT_TRUE(wait_for_file(cut + "/best_model.json", 120)) << read_all(launcher.log);
  const double epoch_seconds = engine::read_metrics(cut).at(0).seconds;
  std::this_thread::sleep_for(std::chrono::duration<double>(0.3 * epoch_seconds));
  kill(launcher.pid, SIGTERM);
  ASSERT_EQ(wait_for(launcher, 120), 143) << read_all(launcher.log);
  const auto log = read_all(launcher.log);
  EXPECT_GT(steps_of(log, 0), 16) << log;  // 512 images / (2 x 16): 16 steps per epoch
  EXPECT_EQ(steps_of(log, 0), steps_of(log, 1)) << log;
  models::ModelConfig mc;
  mc.num_classes = 10, mc.in_channels = 1;
  auto probe = models::create_model("rla_resnet20", mc);
  const auto state = engine::load_checkpoint(cut + "/last.ckpt", *probe, nullptr);
  EXPECT_EQ(state.epochs_done, 1);
  EXPECT_EQ(state.next_batch, steps_of(log, 0) - 16);
  EXPECT_GT(state.next_batch, 0) << "the stop was not mid-epoch";

  const auto r = test::run_rla(joined(launch_args(train_args_on(512, cut, 2, "--resume"))));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(fingerprint(r.output, 0), fingerprint(f.output, 0)) << r.output << f.output;
  const auto a = engine::read_metrics(full), b = engine::read_metrics(cut);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (size_t e = 0; e < 2; ++e) {
    EXPECT_NEAR(a[e].train_loss, b[e].train_loss, 1e-12 * a[e].train_loss) << "epoch " << e + 1;
    EXPECT_EQ(a[e].train_top1, b[e].train_top1) << "epoch " << e + 1;
    EXPECT_EQ(a[e].val_loss, b[e].val_loss) << "epoch " << e + 1;
    EXPECT_EQ(a[e].val_top1, b[e].val_top1) << "epoch " << e + 1;
  }
  auto wa = load_resnet20(full + "/last.ckpt"), wb = load_resnet20(cut + "/last.ckpt");
  const auto sa = models::state_dict(*wa), sb = models::state_dict(*wb);
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_TRUE(torch::equal(sa[i].second, sb[i].second)) << sa[i].first;
  EXPECT_EQ(read_all(full + "/result.json"), read_all(cut + "/result.json"));
  fs::remove_all(full);
  fs::remove_all(cut);
}

// Ranks started without the launcher: a SIGTERM to rank 1 alone reaches rank 0 through the
// gradient all-reduce; both stop after the same step (rank 1 with 143, rank 0 with 130: stopped,
// not signalled) and rank 0 saves. Then a plain second run into the folder that now holds a run:
// rank 0 refuses it, and rank 1 stops at once instead of waiting for rank 0.
TEST(DataParallelRun, SigtermToOneRankStopsBothAndARefusedFolderStopsBoth) {
  const auto out = temp_dir("term_one");
  const auto args = train_args_on(512, out, 100, "--dist-timeout 30");
  int port = free_port();
  auto r0 = spawn_rla(args, rank_env(0, 2, port), out + "/rank0.log");
  auto r1 = spawn_rla(args, rank_env(1, 2, port), out + "/rank1.log");
  ASSERT_TRUE(wait_for_file(out + "/best_model.json", 120)) << read_all(r0.log);
  kill(r1.pid, SIGTERM);
  EXPECT_EQ(wait_for(r1, 60), 143) << read_all(r1.log);
  EXPECT_EQ(wait_for(r0, 60), 130) << read_all(r0.log);
  const auto log0 = read_all(r0.log), log1 = read_all(r1.log);
  EXPECT_GT(steps_of(log0, 0), 0) << log0;
  EXPECT_EQ(steps_of(log0, 0), steps_of(log1, 1)) << log0 << log1;
  EXPECT_NO_THROW(load_resnet20(out + "/last.ckpt"));

  port = free_port();
  const auto t0 = Clock::now();
  auto s0 = spawn_rla(train_args_on(512, out, 100), rank_env(0, 2, port), out + "/again0.log");
  auto s1 = spawn_rla(train_args_on(512, out, 100), rank_env(1, 2, port), out + "/again1.log");
  EXPECT_EQ(wait_for(s0, 30), 1) << read_all(s0.log);
  EXPECT_EQ(wait_for(s1, 30), 1) << read_all(s1.log);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 20);
  EXPECT_NE(read_all(s0.log).find("already holds a run"), std::string::npos) << read_all(s0.log);
  EXPECT_NE(read_all(s1.log).find("rank 1: another rank could not start the run in " + out),
            std::string::npos)
      << read_all(s1.log);
  fs::remove_all(out);
}

}  // namespace
