#pragma once
// Opening a dataset by name, with the transforms and normalisation that go with it.
#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

#include "rla/data/dataset.h"
#include "rla/data/transforms.h"

namespace rla::data {

/// What follows crop + flip in training (data/augment.h).
enum class AutoAugment { kNone, kTrivialAugment, kRandAugment };
/// "none" | "trivialaugment" | "randaugment"; throws util::FieldError("auto_augment") otherwise.
AutoAugment parse_auto_augment(const std::string& name);
std::string to_string(AutoAugment a);
std::vector<std::string> auto_augment_names();
void to_json(nlohmann::json& j, AutoAugment a);  ///< its name
void from_json(const nlohmann::json& j, AutoAugment& a);

/// The dataset and its per-image training augmentation.
struct DataConfig {
  std::string dataset = "fashion-mnist";  ///< fashion-mnist | mnist | cifar10 | cifar100 | folder | synthetic
  std::string root;                       ///< default: /usr/share/datasets/<dataset> where packaged
  size_t limit_train = 0;                 ///< use only the first N training examples (0 = all)
  size_t limit_test = 0;
  /// Hold out a class-stratified validation split of this many training images (0 = none);
  /// carved from the full training set before limit_train, drawn with val_seed (not the run's
  /// seed), so every run with the same val_size / val_seed sees the same split.
  size_t val_size = 0;
  uint64_t val_seed = 0;
  bool augment = true;  ///< training augmentation (crop + flip)
  /// After crop + flip (data/augment.h): none, TrivialAugmentWide or RandAugment (with
  /// randaugment_ops / randaugment_magnitude, 31 bins).
  AutoAugment auto_augment = AutoAugment::kNone;
  int64_t randaugment_ops = 2, randaugment_magnitude = 9;
  double random_erasing = 0.0;  ///< probability of RandomErasing after normalisation
  int64_t image_size = 224;     ///< image folders: crop size
  int64_t synthetic_size = 512;
  uint64_t seed = 0;  ///< augmentation and synthetic data (a training run sets it to its own seed)

  /// The options with their config.json keys (util/json_fields.h); `seed` is the run's.
  template <typename Self, typename Visit>
  static void visit_fields(Self& self, Visit&& visit) {
    visit("dataset", self.dataset);
    visit("data_root", self.root);
    visit("limit_train", self.limit_train);
    visit("limit_test", self.limit_test);
    visit("val_size", self.val_size);
    visit("val_seed", self.val_seed);
    visit("augment", self.augment);
    visit("image_size", self.image_size);
    visit("synthetic_size", self.synthetic_size);
    visit("auto_augment", self.auto_augment);
    visit("randaugment_ops", self.randaugment_ops);
    visit("randaugment_magnitude", self.randaugment_magnitude);
    visit("random_erasing", self.random_erasing);
  }
};

struct DataBundle {
  DatasetPtr train, test;
  DatasetPtr val;                                            ///< null unless DataConfig::val_size > 0
  std::vector<Transform> train_transforms, eval_transforms;  ///< including normalisation
  std::vector<int64_t> input_shape;                          ///< [C, H, W] the model sees
  Normalization normalization;
};

/// Known dataset names, for help texts and error messages.
std::vector<std::string> dataset_names();
/// Throws util::FieldError naming the field (its config.json key) when the dataset is unknown or
/// the augmentation options contradict each other or are out of range (checked by open_data too).
void validate_data(const DataConfig& config);
/// Opens train and test splits. Throws DataError naming the missing/bad file.
DataBundle open_data(const DataConfig& config);

}  // namespace rla::data
