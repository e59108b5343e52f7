// Training throughput (img/s) of the CIFAR-style models on Fashion-MNIST-sized batches, and the
// Fashion-MNIST loader's throughput, to show the loader is not the bottleneck.
//   ./build/benchmarks/bench_train --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <thread>

#include "rla/data/loader.h"
#include "rla/data/sources.h"
#include "rla/models/registry.h"

namespace {

using namespace rla;

void train_step(benchmark::State& state, const std::string& model, bool channels_last) {
  torch::set_num_threads(static_cast<int>(state.range(1)));
  const int64_t batch = state.range(0);
  models::ModelConfig cfg;
  cfg.in_channels = 1;
  cfg.channels_last = channels_last;
  auto net = models::create_model(model, cfg);
  net->train();
  torch::optim::SGD opt(models::unique_parameters(*net), torch::optim::SGDOptions(0.05).momentum(0.9));
  auto x = torch::randn({batch, 1, 28, 28});
  if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  auto y = torch::randint(10, {batch}, torch::kLong);
  for (int i = 0; i < 2; ++i) {  // warm-up: oneDNN primitive creation
    opt.zero_grad();
    torch::nn::functional::cross_entropy(net->forward(x), y).backward();
    opt.step();
  }
  for (auto _ : state) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.counters["img/s"] =
      benchmark::Counter(static_cast<double>(batch * state.iterations()), benchmark::Counter::kIsRate);
}

void BM_TrainResNet20(benchmark::State& s) {
  train_step(s, "resnet20", false);
}
void BM_TrainRlaResNet20(benchmark::State& s) {
  train_step(s, "rla_resnet20", false);
}
void BM_TrainResNet20ChannelsLast(benchmark::State& s) {
  train_step(s, "resnet20", true);
}
void BM_TrainRlaResNet20ChannelsLast(benchmark::State& s) {
  train_step(s, "rla_resnet20", true);
}

const int kCores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
#define TRAIN_ARGS \
  ->Args({128, kCores})->Args({128, 1})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0)
BENCHMARK(BM_TrainResNet20) TRAIN_ARGS;
BENCHMARK(BM_TrainRlaResNet20) TRAIN_ARGS;
BENCHMARK(BM_TrainResNet20ChannelsLast) TRAIN_ARGS;
BENCHMARK(BM_TrainRlaResNet20ChannelsLast) TRAIN_ARGS;

// Fashion-MNIST (from the Debian package) through crop + flip + normalise, batches of 128.
void BM_LoaderFashionMnist(benchmark::State& state) {
  data::DataConfig dc;
  auto bundle = data::open_data(dc);
  data::LoaderOptions lo;
  lo.batch_size = 128;
  lo.workers = static_cast<int>(state.range(0));
  data::DataLoader loader(bundle.train, bundle.train_transforms, lo);
  int64_t images = 0, epoch = 0;
  loader.start_epoch(epoch);
  for (auto _ : state) {
    auto b = loader.next();
    if (!b) {
      loader.start_epoch(++epoch);
      b = loader.next();
    }
    images += b->labels.size(0);
  }
  state.counters["img/s"] = benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LoaderFashionMnist)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
