#pragma once
// IDX files (MNIST / Fashion-MNIST), gzip'd or raw: big-endian magic 0x00000803 (images,
// dims N, H, W) or 0x00000801 (labels, dim N), then the bytes.
#include <string>

#include "rla/data/dataset.h"

namespace rla::data {

/// Reads an image file and its label file (each .gz or raw) into uint8 [N, 1, H, W].
/// Validates magic numbers, declared sizes against the file length, that both files hold the
/// same count, and that labels lie in [0, num_classes). Throws DataError naming the file.
std::shared_ptr<TensorDataset> load_idx(const std::string& images_path, const std::string& labels_path,
                                        int64_t num_classes, const std::string& description,
                                        std::vector<std::string> class_names = {});

/// Reads a whole file, transparently un-gzipping it when it starts with the gzip magic.
std::string read_maybe_gzip(const std::string& path);

}  // namespace rla::data
