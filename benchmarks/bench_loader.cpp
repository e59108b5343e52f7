// Input-pipeline throughput on a folder of generated JPEGs (ImageNet-style training path):
// decode alone, decode + RandomResizedCrop(224) + flip + normalise per image, and the
// multi-threaded DataLoader over the same pipeline. items_per_second = images per second.
//
// Also the Fashion-MNIST training pipeline with each augmentation of the modern recipe
// (docs/training.md): one epoch of 60,000 images per iteration, inline (0 workers), and the
// Mixup / CutMix of a 128-image batch.
//
//   ./build/benchmarks/bench_loader [--benchmark_filter=Loader]
//   ./build/benchmarks/bench_loader --benchmark_filter=Fashion
//   RLA_BENCH_IMAGES=1024 ./build/benchmarks/bench_loader
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "rla/data/augment.h"
#include "rla/data/image_folder.h"
#include "rla/data/image_io.h"
#include "rla/data/loader.h"
#include "rla/data/sources.h"
#include "rla/data/transforms.h"

namespace fs = std::filesystem;
using namespace rla::data;

namespace {

// 512 (or $RLA_BENCH_IMAGES) 256x256 JPEGs, quality 90, in 8 class folders under a temp dir;
// photo-like content (smooth gradients plus noise) so the files have realistic sizes (~20 KB).
class JpegFolder {
 public:
  JpegFolder() {
    const char* env = std::getenv("RLA_BENCH_IMAGES");
    const int count = env ? std::max(8, std::atoi(env)) : 512;
    root_ = fs::temp_directory_path() / ("rla_bench_jpegs_" + std::to_string(::getpid()));
    torch::manual_seed(0);
    const auto y = torch::linspace(0, 1, 256).view({1, 256, 1});
    const auto x = torch::linspace(0, 1, 256).view({1, 1, 256});
    for (int i = 0; i < count; ++i) {
      const auto phase = torch::rand({3, 1, 1}) * 6.0;
      const auto smooth = 128.0 + 90.0 * torch::sin(phase + 5.0 * x + 3.0 * y * phase);
      const auto image =
          (smooth + 12.0 * torch::randn({3, 256, 256})).round().clamp(0, 255).to(torch::kUInt8);
      const fs::path folder = root_ / "train" / ("class" + std::to_string(i % 8));
      fs::create_directories(folder);
      write_jpeg((folder / ("img" + std::to_string(i) + ".jpg")).string(), image, 90);
    }
    dataset_ = load_image_folder(root_.string(), true);
  }
  ~JpegFolder() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  const DatasetPtr& dataset() const { return dataset_; }

 private:
  fs::path root_;
  DatasetPtr dataset_;
};

const JpegFolder& folder() {
  static JpegFolder instance;
  return instance;
}

std::vector<Transform> train_transforms() {
  const Normalization imagenet{{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}};
  return {random_resized_crop(224), horizontal_flip(), normalize(imagenet)};
}

void BM_DecodeJpeg(benchmark::State& state) {
  const auto& ds = *folder().dataset();
  torch::set_num_threads(1);
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const auto image = ds.get(i++ % ds.size()).image;
    benchmark::DoNotOptimize(image.data_ptr<uint8_t>());
    bytes += static_cast<size_t>(image.numel());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["decoded_MB/s"] =
      benchmark::Counter(static_cast<double>(bytes) / 1e6, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeJpeg)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DecodeAndTransform(benchmark::State& state) {
  const auto& ds = *folder().dataset();
  const auto transforms = train_transforms();
  torch::set_num_threads(1);
  size_t i = 0;
  for (auto _ : state) {
    const auto ex = ds.get(i % ds.size());
    Rng rng(i++);
    const auto out = apply_all(transforms, ex.image.to(torch::kFloat).div_(255.0), rng);
    benchmark::DoNotOptimize(out.data_ptr<float>());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeAndTransform)->Unit(benchmark::kMillisecond)->UseRealTime();

// One full epoch of `loader` per benchmark iteration; items = images.
void run_epochs(benchmark::State& state, DataLoader& loader) {
  int64_t epoch = 0, images = 0;
  for (auto _ : state) {
    loader.start_epoch(epoch++);
    while (auto batch = loader.next()) {
      benchmark::DoNotOptimize(batch->images.data_ptr<float>());
      images += batch->images.size(0);
    }
  }
  state.SetItemsProcessed(images);
}

// One full epoch per iteration through the DataLoader; Arg = worker threads (0 = inline).
void BM_Loader(benchmark::State& state) {
  const auto& ds = folder().dataset();
  torch::set_num_threads(1);
  LoaderOptions options;
  options.batch_size = 64;
  options.workers = static_cast<int>(state.range(0));
  options.seed = 1;
  DataLoader loader(ds, train_transforms(), options);
  run_epochs(state, loader);
}
BENCHMARK(BM_Loader)->Arg(0)->Arg(1)->Arg(2)->Arg(4)->Unit(benchmark::kMillisecond)->UseRealTime();

// The Fashion-MNIST training pipeline (crop + flip + normalise) plus one option; Arg = option:
// 0 none, 1 TrivialAugmentWide, 2 RandAugment(2, 9), 3 RandomErasing(0.1), 4 all of the modern
// preset's per-image steps (TrivialAugmentWide + RandomErasing 0.1).
void BM_FashionPipeline(benchmark::State& state) {
  static const char* names[] = {"crop+flip", "+trivialaugment", "+randaugment(2,9)", "+erasing(0.1)",
                                "+trivialaugment+erasing"};
  DataConfig c;
  const auto option = state.range(0);
  if (option == 1 || option == 4) c.auto_augment = rla::data::AutoAugment::kTrivialAugment;
  if (option == 2) c.auto_augment = rla::data::AutoAugment::kRandAugment;
  if (option == 3 || option == 4) c.random_erasing = 0.1;
  DataBundle b;
  try {
    b = open_data(c);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  state.SetLabel(names[option]);
  torch::set_num_threads(1);
  LoaderOptions options;
  options.batch_size = 128;
  options.workers = 0;
  options.seed = 1;
  DataLoader loader(b.train, b.train_transforms, options);
  run_epochs(state, loader);
}
BENCHMARK(BM_FashionPipeline)->DenseRange(0, 4)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// Mixup (Arg 0) or CutMix (Arg 1) of a 128 x 1 x 28 x 28 batch with its soft targets.
void BM_FashionBatchMix(benchmark::State& state) {
  torch::set_num_threads(1);
  const auto images = torch::randn({128, 1, 28, 28});
  const auto labels = torch::randint(0, 10, {128}, torch::kLong);
  const auto options = BatchMixOptions()
                           .num_classes(10)
                           .mixup_alpha(state.range(0) == 0 ? 0.2 : 0.0)
                           .cutmix_alpha(state.range(0) == 1 ? 1.0 : 0.0);
  Rng rng(0);
  for (auto _ : state) {
    const auto m = mix_batch(images, labels, options, rng);
    benchmark::DoNotOptimize(m.images.data_ptr<float>());
  }
  state.SetItemsProcessed(state.iterations() * 128);
  state.SetLabel(state.range(0) == 0 ? "mixup" : "cutmix");
}
BENCHMARK(BM_FashionBatchMix)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
