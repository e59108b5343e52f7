#pragma once
// A multi-threaded batch loader with prefetch. The order of an epoch depends only on
// (seed, epoch); each sample's augmentation draws from its own generator seeded by
// (seed, epoch, index), so batches are identical whatever the number of workers.
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "rla/data/dataset.h"
#include "rla/data/transforms.h"

namespace rla::data {

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;
  uint64_t seed = 0;
  int workers = 2;   ///< 0: build batches on the calling thread
  int prefetch = 4;  ///< batches built ahead of the consumer
  int rank = 0;      ///< this process's shard (distributed training)
  int world_size = 1;
  bool pad_shards = true;  ///< repeat samples so every rank gets the same count (training)
  bool channels_last = false;
};

struct Batch {
  torch::Tensor images;  ///< float [N, C, H, W], transformed and normalised
  torch::Tensor labels;  ///< int64 [N]
  std::vector<int64_t> indices;
};

class DataLoader {
 public:
  DataLoader(DatasetPtr dataset, std::vector<Transform> transforms, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Sample indices this rank visits in `epoch`, in order.
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  size_t batches_per_epoch() const;
  size_t samples_per_epoch() const;
  /// Starts `epoch`, skipping its first `first_batch` batches (to resume mid-epoch).
  void start_epoch(int64_t epoch, size_t first_batch = 0);
  /// The next batch of the current epoch, or nullopt at its end.
  std::optional<Batch> next();
  const Dataset& dataset() const { return *dataset_; }
  /// Builds one batch from explicit indices (used by the workers; public for tests).
  Batch make_batch(const std::vector<int64_t>& indices, int64_t epoch) const;

 private:
  void worker_loop();
  void stop_workers();

  DatasetPtr dataset_;
  std::vector<Transform> transforms_;
  LoaderOptions options_;

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;
  int64_t epoch_ = 0;
  std::vector<std::vector<int64_t>> plan_;  ///< the current epoch's batches
  size_t next_to_build_ = 0, next_to_yield_ = 0;
  std::map<size_t, Batch> ready_;
  std::exception_ptr error_;
};

}  // namespace rla::data
