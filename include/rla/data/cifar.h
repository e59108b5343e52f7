#pragma once
// CIFAR-10 and CIFAR-100 in their binary distributions (docs/data.md). Both return a TensorDataset
// over uint8 [N, 3, 32, 32] images, read in file order.
#include <string>
#include <vector>

#include "rla/data/dataset.h"

namespace rla::data {

/// CIFAR-10 binary: `data_batch_1.bin` … `data_batch_5.bin` (train) or `test_batch.bin`, each a
/// sequence of 3073-byte records: label (0..9), then 1024 R, 1024 G, 1024 B bytes (row-major
/// 32x32). `root` is the folder holding the files or its parent holding `cifar-10-batches-bin/`.
/// Class names come from `batches.meta.txt` when present, else the standard ten names.
/// Throws DataError naming the file: missing, empty, truncated, label out of range.
DatasetPtr load_cifar10(const std::string& root, bool train);

/// CIFAR-100 binary: `train.bin` / `test.bin`, 3074-byte records: coarse label (0..19), fine
/// label (0..99), 3072 pixel bytes as above. Labels are the fine ones (100 classes).
/// `root` is the folder holding the files or its parent holding `cifar-100-binary/`.
/// Class names come from `fine_label_names.txt` when present, else the standard 100 names.
DatasetPtr load_cifar100(const std::string& root, bool train);

/// The standard class names, index = label.
const std::vector<std::string>& cifar10_class_names();
const std::vector<std::string>& cifar100_class_names();

}  // namespace rla::data
