#include "rla/data/loader.h"

#include <algorithm>
#include <numeric>

namespace rla::data {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

DataLoader::DataLoader(DatasetPtr dataset, std::vector<Transform> transforms, LoaderOptions options)
    : dataset_(std::move(dataset)), transforms_(std::move(transforms)), options_(options) {
  TORCH_CHECK(dataset_ && dataset_->size() > 0, "DataLoader: empty dataset");
  TORCH_CHECK(options_.batch_size > 0, "batch size must be positive, got ", options_.batch_size);
  TORCH_CHECK(options_.world_size >= 1 && options_.rank >= 0 && options_.rank < options_.world_size,
              "DataLoader: rank ", options_.rank, " outside world of ", options_.world_size);
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

DataLoader::~DataLoader() {
  stop_workers();
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(dataset_->size());
  std::iota(order.begin(), order.end(), 0);
  if (options_.shuffle) {
    Rng rng(mix(options_.seed ^ mix(static_cast<uint64_t>(epoch) + 1)));
    std::shuffle(order.begin(), order.end(), rng);
  }
  const auto world = static_cast<size_t>(options_.world_size);
  if (world == 1) return order;
  if (options_.pad_shards) {
    const size_t padded = (order.size() + world - 1) / world * world;
    for (size_t i = order.size(); i < padded; ++i) order.push_back(order[i % dataset_->size()]);
  }
  std::vector<int64_t> shard;
  for (size_t i = static_cast<size_t>(options_.rank); i < order.size(); i += world) shard.push_back(order[i]);
  return shard;
}

size_t DataLoader::samples_per_epoch() const {
  return epoch_order(0).size();
}

size_t DataLoader::batches_per_epoch() const {
  const size_t n = samples_per_epoch(), b = static_cast<size_t>(options_.batch_size);
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

Batch DataLoader::make_batch(const std::vector<int64_t>& indices, int64_t epoch) const {
  Batch batch;
  batch.indices = indices;
  batch.labels = torch::empty({static_cast<int64_t>(indices.size())}, torch::kLong);
  auto* labels = batch.labels.data_ptr<int64_t>();
  for (size_t i = 0; i < indices.size(); ++i) {
    const auto idx = indices[i];
    Example ex = dataset_->get(static_cast<size_t>(idx));
    Rng rng(mix(options_.seed ^ mix((static_cast<uint64_t>(epoch) << 32) ^ static_cast<uint64_t>(idx))));
    auto img = apply_all(transforms_, ex.image.to(torch::kFloat).div_(255.0), rng);
    if (i == 0) {
      auto shape = img.sizes().vec();
      shape.insert(shape.begin(), static_cast<int64_t>(indices.size()));
      batch.images = torch::empty(shape, torch::kFloat);
    }
    TORCH_CHECK(img.sizes() == batch.images.sizes().slice(1), "sample ", idx, " has shape ", img.sizes(),
                " but the batch started with ", batch.images.sizes().slice(1),
                " (images of different sizes need a resize transform)");
    batch.images[static_cast<int64_t>(i)].copy_(img);
    labels[i] = ex.label;
  }
  if (options_.channels_last) batch.images = batch.images.contiguous(at::MemoryFormat::ChannelsLast);
  return batch;
}

void DataLoader::start_epoch(int64_t epoch, size_t first_batch) {
  const auto order = epoch_order(epoch);
  std::vector<std::vector<int64_t>> plan;
  const size_t b = static_cast<size_t>(options_.batch_size);
  for (size_t start = 0; start < order.size(); start += b) {
    const size_t end = std::min(order.size(), start + b);
    if (options_.drop_last && end - start < b) break;
    plan.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(start),
                      order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
    epoch_ = epoch;
    plan_ = std::move(plan);
    next_to_build_ = next_to_yield_ = std::min(first_batch, plan_.size());
    ready_.clear();
    error_ = nullptr;
  }
  cv_.notify_all();
}

void DataLoader::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    cv_.wait(lock, [&] {
      return stop_ || (next_to_build_ < plan_.size() &&
                       next_to_build_ < next_to_yield_ + static_cast<size_t>(std::max(1, options_.prefetch)));
    });
    if (stop_) return;
    const size_t index = next_to_build_++;
    const uint64_t generation = generation_;
    const auto indices = plan_[index];
    const int64_t epoch = epoch_;
    lock.unlock();
    Batch batch;
    std::exception_ptr error;
    try {
      batch = make_batch(indices, epoch);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (generation != generation_) continue;  // the epoch was restarted meanwhile
    if (error && !error_) error_ = error;
    ready_.emplace(index, std::move(batch));
    cv_.notify_all();
  }
}

std::optional<Batch> DataLoader::next() {
  if (workers_.empty()) {
    if (next_to_yield_ >= plan_.size()) return std::nullopt;
    return make_batch(plan_[next_to_yield_++], epoch_);
  }
  std::unique_lock<std::mutex> lock(mutex_);
  if (next_to_yield_ >= plan_.size()) return std::nullopt;
  cv_.wait(lock, [&] { return error_ || ready_.count(next_to_yield_) > 0; });
  if (error_) std::rethrow_exception(error_);
  auto node = ready_.extract(next_to_yield_);
  ++next_to_yield_;
  lock.unlock();
  cv_.notify_all();
  return std::move(node.mapped());
}

}  // namespace rla::data
