#include "rla/data/sources.h"

#include <filesystem>

#include <fmt/format.h>

#include "rla/data/idx.h"
#include "rla/data/synthetic.h"

namespace rla::data {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kFashionNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

std::string find_idx(const std::string& root, const std::string& stem) {
  for (const auto& name : {stem + ".gz", stem}) {
    if (fs::exists(fs::path(root) / name)) return (fs::path(root) / name).string();
  }
  throw DataError(
      fmt::format("{}: no {}[.gz] here (is the dataset installed? Fashion-MNIST: apt-get install "
                  "dataset-fashion-mnist)",
                  root, stem));
}

DataBundle open_idx(const DataConfig& c, const std::string& title, const Normalization& norm,
                    const std::vector<std::string>& names) {
  DataBundle b;
  const auto train =
      load_idx(find_idx(c.root, "train-images-idx3-ubyte"), find_idx(c.root, "train-labels-idx1-ubyte"), 10,
               fmt::format("{} train ({})", title, c.root), names);
  const auto test =
      load_idx(find_idx(c.root, "t10k-images-idx3-ubyte"), find_idx(c.root, "t10k-labels-idx1-ubyte"), 10,
               fmt::format("{} test ({})", title, c.root), names);
  b.train = train;
  b.test = test;
  b.input_shape = {1, train->images().size(2), train->images().size(3)};
  b.normalization = norm;
  if (c.augment) {
    b.train_transforms = {random_crop(b.input_shape[1], 2), horizontal_flip()};
  }
  return b;
}

}  // namespace

std::vector<std::string> dataset_names() {
  return {"fashion-mnist", "mnist", "synthetic"};
}

DataBundle open_data(const DataConfig& config) {
  DataConfig c = config;
  DataBundle b;
  if (c.dataset == "fashion-mnist") {
    if (c.root.empty()) c.root = "/usr/share/datasets/fashion-mnist";
    b = open_idx(c, "Fashion-MNIST", {{0.2860}, {0.3530}}, kFashionNames);
  } else if (c.dataset == "mnist") {
    if (c.root.empty()) c.root = "/usr/share/datasets/mnist";
    b = open_idx(c, "MNIST", {{0.1307}, {0.3081}}, {});
  } else if (c.dataset == "synthetic") {
    SyntheticOptions o;
    o.size = c.synthetic_size;
    o.seed = c.seed;
    b.train = make_synthetic(o);
    o.split = 1;
    o.size = std::max<int64_t>(64, c.synthetic_size / 4);
    b.test = make_synthetic(o);
    b.input_shape = {1, 28, 28};
    b.normalization = {{0.5}, {0.25}};
    if (c.augment) b.train_transforms = {random_crop(28, 2)};
  } else {
    throw std::invalid_argument(fmt::format("unknown dataset '{}' (expected one of: {})", c.dataset,
                                            fmt::join(dataset_names(), ", ")));
  }
  b.train_transforms.push_back(normalize(b.normalization));
  b.eval_transforms.push_back(normalize(b.normalization));
  b.train = take_first(b.train, c.limit_train);
  b.test = take_first(b.test, c.limit_test);
  return b;
}

}  // namespace rla::data
