#include "rla/data/sources.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "rla/data/augment.h"
#include "rla/data/cifar.h"
#include "rla/data/idx.h"
#include "rla/data/image_folder.h"
#include "rla/data/synthetic.h"
#include "rla/util/json_fields.h"

namespace rla::data {
namespace {

namespace fs = std::filesystem;
using util::FieldError;

constexpr util::EnumNames<AutoAugment, 3> kAutoAugmentNames{
    "auto_augment",
    {{{AutoAugment::kNone, "none"},
      {AutoAugment::kTrivialAugment, "trivialaugment"},
      {AutoAugment::kRandAugment, "randaugment"}}}};

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

AutoAugment parse_auto_augment(const std::string& name) {
  return kAutoAugmentNames.parse(name);
}

std::string to_string(AutoAugment a) {
  return kAutoAugmentNames.name(a);
}

std::vector<std::string> auto_augment_names() {
  return kAutoAugmentNames.all();
}

void to_json(nlohmann::json& j, AutoAugment a) {
  j = to_string(a);
}

void from_json(const nlohmann::json& j, AutoAugment& a) {
  a = parse_auto_augment(j.get<std::string>());
}

std::vector<std::string> dataset_names() {
  return {"fashion-mnist", "mnist", "cifar10", "cifar100", "folder", "synthetic"};
}

void validate_data(const DataConfig& c) {
  const auto names = dataset_names();
  if (std::find(names.begin(), names.end(), c.dataset) == names.end())
    throw FieldError("dataset", fmt::format("unknown dataset '{}' (expected one of: {})", c.dataset,
                                            fmt::join(names, ", ")));
  if ((c.auto_augment != AutoAugment::kNone || c.random_erasing > 0) && !c.augment)
    throw FieldError({"augment", "auto_augment", "random_erasing"},
                     "augment = false contradicts auto_augment / random_erasing");
  if (c.auto_augment == AutoAugment::kRandAugment) {
    if (c.randaugment_ops < 1)
      throw FieldError("randaugment_ops",
                       fmt::format("randaugment_ops must be >= 1, got {}", c.randaugment_ops));
    if (c.randaugment_magnitude < 0 || c.randaugment_magnitude > 30)
      throw FieldError(
          "randaugment_magnitude",
          fmt::format("randaugment_magnitude must be a magnitude bin in [0, 30] (31 bins), got {}",
                      c.randaugment_magnitude));
  }
  if (!(c.random_erasing >= 0 && c.random_erasing <= 1))
    throw FieldError("random_erasing",
                     fmt::format("random_erasing must be a probability in [0, 1], got {}", c.random_erasing));
}

DataBundle open_data(const DataConfig& config) {
  validate_data(config);
  DataConfig c = config;
  DataBundle b;
  if (c.dataset == "fashion-mnist") {
    if (c.root.empty()) c.root = "/usr/share/datasets/fashion-mnist";
    b = open_idx(c, "Fashion-MNIST", {{0.2860}, {0.3530}}, kFashionNames);
  } else if (c.dataset == "mnist") {
    if (c.root.empty()) c.root = "/usr/share/datasets/mnist";
    b = open_idx(c, "MNIST", {{0.1307}, {0.3081}}, {});
  } else if (c.dataset == "cifar10" || c.dataset == "cifar100") {
    if (c.root.empty())
      throw FieldError("data_root",
                       "data_root is required for " + c.dataset + " (the folder with its .bin files)");
    const bool ten = c.dataset == "cifar10";
    b.train = ten ? load_cifar10(c.root, true) : load_cifar100(c.root, true);
    b.test = ten ? load_cifar10(c.root, false) : load_cifar100(c.root, false);
    b.input_shape = {3, 32, 32};
    b.normalization = ten ? Normalization{{0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616}}
                          : Normalization{{0.5071, 0.4865, 0.4409}, {0.2673, 0.2564, 0.2762}};
    if (c.augment) b.train_transforms = {random_crop(32, 4), horizontal_flip()};
  } else if (c.dataset == "folder") {
    if (c.root.empty())
      throw FieldError("data_root", "data_root is required for folder (root/{train,val}/<class>/)");
    b.train = load_image_folder(c.root, true);
    b.test = load_image_folder(c.root, false);
    // A label is the class folder's position among the sorted names: the two splits must hold
    // the same class folders, or val's labels would silently mean other classes.
    if (b.train->class_names() != b.test->class_names())
      throw FieldError(
          "data_root",
          fmt::format("{}: train/ and val/ hold different class folders ({} and {}): "
                      "the labels are positions among the sorted names",
                      c.root, fmt::join(b.train->class_names(), ","), fmt::join(b.test->class_names(), ",")));
    b.input_shape = {3, c.image_size, c.image_size};
    b.normalization = {{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}};
    const auto resize = static_cast<int64_t>(std::lround(static_cast<double>(c.image_size) * 256.0 / 224.0));
    b.train_transforms = {c.augment ? random_resized_crop(c.image_size)
                                    : resize_center_crop(resize, c.image_size)};
    if (c.augment) b.train_transforms.push_back(horizontal_flip());
    b.eval_transforms = {resize_center_crop(resize, c.image_size)};
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
  }
  if (c.auto_augment == AutoAugment::kTrivialAugment) b.train_transforms.push_back(trivial_augment_wide());
  if (c.auto_augment == AutoAugment::kRandAugment)
    b.train_transforms.push_back(rand_augment(c.randaugment_ops, c.randaugment_magnitude));
  b.train_transforms.push_back(normalize(b.normalization));
  if (c.random_erasing > 0) b.train_transforms.push_back(random_erasing(c.random_erasing));
  b.eval_transforms.push_back(normalize(b.normalization));
  if (c.val_size > 0) std::tie(b.train, b.val) = stratified_split(b.train, c.val_size, c.val_seed);
  b.train = take_first(b.train, c.limit_train);
  b.test = take_first(b.test, c.limit_test);
  return b;
}

}  // namespace rla::data
