#pragma once
// Datasets: random access to (image, label) pairs. Readers validate everything they read and
// throw DataError naming the file and the problem (docs/data.md).
#include <torch/torch.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace rla::data {

/// A malformed or unreadable data file: what() names the file and what is wrong with it.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One example: image uint8 [C, H, W] (0..255; may be a view into shared storage) and class.
struct Example {
  torch::Tensor image;
  int64_t label = 0;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  /// Thread-safe; called concurrently by the loader's workers.
  virtual Example get(size_t index) const = 0;
  /// The label of example `index` without decoding its image (default: get(index).label).
  virtual int64_t label(size_t index) const;
  virtual int64_t num_classes() const = 0;
  virtual int64_t channels() const = 0;
  /// e.g. "Fashion-MNIST train (60000 images, /usr/share/datasets/fashion-mnist)"
  virtual std::string description() const = 0;
  /// Class names, index = label. Default: "0", "1", ...
  virtual std::vector<std::string> class_names() const;
};
using DatasetPtr = std::shared_ptr<const Dataset>;

/// In-memory dataset over images uint8 [N, C, H, W] and labels int64 [N].
class TensorDataset : public Dataset {
 public:
  TensorDataset(torch::Tensor images, torch::Tensor labels, int64_t num_classes, std::string description,
                std::vector<std::string> class_names = {});
  size_t size() const override { return static_cast<size_t>(images_.size(0)); }
  Example get(size_t index) const override;
  int64_t label(size_t index) const override;
  int64_t num_classes() const override { return num_classes_; }
  int64_t channels() const override { return images_.size(1); }
  std::string description() const override { return description_; }
  std::vector<std::string> class_names() const override;
  const torch::Tensor& images() const { return images_; }
  const torch::Tensor& labels() const { return labels_; }

 private:
  torch::Tensor images_, labels_;
  int64_t num_classes_;
  std::string description_;
  std::vector<std::string> class_names_;
};

/// The first `n` examples of `base` (all if n == 0 or n >= size): quick runs and tests.
DatasetPtr take_first(DatasetPtr base, size_t n);

/// A class-stratified split of `base` into {rest, held out}: each class gives
/// round(held_out * class_size / size) examples (largest remainders settle the total), drawn
/// by a seeded shuffle of that class's indices, so the split depends only on (base, held_out,
/// seed). Both parts keep `base`'s order. Throws std::invalid_argument unless
/// 0 < held_out < size.
std::pair<DatasetPtr, DatasetPtr> stratified_split(const DatasetPtr& base, size_t held_out, uint64_t seed,
                                                   const std::string& held_out_name = "validation");

/// Per-channel normalisation constants of a dataset family.
struct Normalization {
  std::vector<double> mean, std;
};

}  // namespace rla::data
