// Input-pipeline throughput on a folder of generated JPEGs (ImageNet-style training path):
// decode alone, decode + RandomResizedCrop(224) + flip + normalise per image, and the
// multi-threaded DataLoader over the same pipeline. items_per_second = images per second.
//
//   ./build/benchmarks/bench_loader [--benchmark_filter=Loader]
//   RLA_BENCH_IMAGES=1024 ./build/benchmarks/bench_loader
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "rla/data/image_folder.h"
#include "rla/data/image_io.h"
#include "rla/data/loader.h"
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

// One full epoch per iteration through the DataLoader; Arg = worker threads (0 = inline).
void BM_Loader(benchmark::State& state) {
  const auto& ds = folder().dataset();
  torch::set_num_threads(1);
  LoaderOptions options;
  options.batch_size = 64;
  options.workers = static_cast<int>(state.range(0));
  options.seed = 1;
  DataLoader loader(ds, train_transforms(), options);
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
BENCHMARK(BM_Loader)->Arg(0)->Arg(1)->Arg(2)->Arg(4)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
