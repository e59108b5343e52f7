#pragma once
// CIFAR-10 and CIFAR-100 in their binary distributions, or as a tree of class folders of PNG
// files (docs/data.md). Both return a TensorDataset over uint8 [N, 3, 32, 32] images decoded
// once into memory.
#include <string>
#include <vector>

#include "rla/data/dataset.h"

namespace rla::data {

/// CIFAR-10 binary: `data_batch_1.bin` … `data_batch_5.bin` (train) or `test_batch.bin`, each a
/// sequence of 3073-byte records: label (0..9), then 1024 R, 1024 G, 1024 B bytes (row-major
/// 32x32). `root` is the folder holding the files or its parent holding `cifar-10-batches-bin/`.
/// Class names come from `batches.meta.txt` when present, else the standard ten names.
/// Throws DataError naming the file: missing, empty, truncated, label out of range.
///
/// When `root` holds no binary files but `train/` and `test/` folders, those are read as class
/// folders of PNG files, `<split>/<class name>/*.png` (the layout of the public PNG copies of
/// CIFAR): the label is the class name's index in cifar10_class_names() (cifar100_class_names()),
/// every image must be 32x32, and the images are dealt class by class in sorted file order (the
/// first file of each class, then the second, ...) so that any prefix of the set is balanced.
DatasetPtr load_cifar10(const std::string& root, bool train);

/// CIFAR-100 binary: `train.bin` / `test.bin`, 3074-byte records: coarse label (0..19), fine
/// label (0..99), 3072 pixel bytes as above. Labels are the fine ones (100 classes).
/// `root` is the folder holding the files or its parent holding `cifar-100-binary/`.
/// Class names come from `fine_label_names.txt` when present, else the standard 100 names.
/// A class-folder tree is read as for load_cifar10.
DatasetPtr load_cifar100(const std::string& root, bool train);

/// Writes `train` and `test` in the official CIFAR-10 binary layout into `out_dir` (created):
/// `data_batch_1.bin` … `data_batch_5.bin` (the training images in order, a fifth in each),
/// `test_batch.bin` and `batches.meta.txt` (the class names). Every image must be uint8
/// [3, 32, 32] with a label in 0..9 (DataError otherwise). Each file is written atomically.
/// Returns the paths written. load_cifar10(out_dir) reads back exactly these images and labels.
std::vector<std::string> write_cifar10_binary(const Dataset& train, const Dataset& test,
                                              const std::string& out_dir);

/// The standard class names, index = label.
const std::vector<std::string>& cifar10_class_names();
const std::vector<std::string>& cifar100_class_names();

}  // namespace rla::data
