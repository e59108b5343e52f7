#pragma once
// Opening a dataset by name, with the transforms and normalisation that go with it.
#include <string>
#include <vector>

#include "rla/data/dataset.h"
#include "rla/data/transforms.h"

namespace rla::data {

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
  /// After crop + flip (data/augment.h): "none", "trivialaugment" (TrivialAugmentWide) or
  /// "randaugment" (RandAugment with randaugment_ops / randaugment_magnitude, 31 bins).
  std::string auto_augment = "none";
  int64_t randaugment_ops = 2, randaugment_magnitude = 9;
  double random_erasing = 0.0;  ///< probability of RandomErasing after normalisation
  int64_t image_size = 224;     ///< image folders: crop size
  int64_t synthetic_size = 512;
  uint64_t seed = 0;
};

struct DataBundle {
  DatasetPtr train, test;
  DatasetPtr val;                                            ///< null unless DataConfig::val_size > 0
  std::vector<Transform> train_transforms, eval_transforms;  ///< including normalisation
  std::vector<int64_t> input_shape;                          ///< [C, H, W] the model sees
  Normalization normalization;
};

/// Known dataset names, for --help and error messages.
std::vector<std::string> dataset_names();
/// Throws std::invalid_argument with a one-line message when the augmentation options contradict
/// each other or are out of range (checked by open_data too).
void validate_augmentation(const DataConfig& config);
/// Opens train and test splits. Throws DataError naming the missing/bad file.
DataBundle open_data(const DataConfig& config);

}  // namespace rla::data
