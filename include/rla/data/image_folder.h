#pragma once
// Image folders in the ImageNet layout (docs/data.md): root/<class>/**/*.{jpg,jpeg,png}, the class
// index being the position of <class> among the sorted folder names (torchvision.datasets.
// ImageFolder). Images are decoded lazily, one per get(), at their own size.
#include <string>
#include <vector>

#include "rla/data/dataset.h"

namespace rla::data {

struct ImageFolderOptions {
  /// Decode to this many channels: 3 = RGB (like ImageFolder's convert('RGB')), 1 = grey.
  int channels = 3;
  /// At construction, read every file's header and throw one DataError listing the bad files.
  bool verify = false;
};

/// One file that could not be read, and why.
struct BadImage {
  std::string path, problem;
};

class ImageFolderDataset : public Dataset {
 public:
  /// `root` holds one sub-folder per class. DataError when it is missing, has no class
  /// folders, or a class folder has no image files (extensions matched case-insensitively).
  explicit ImageFolderDataset(std::string root, ImageFolderOptions options = {});

  size_t size() const override { return files_.size(); }
  /// Reads and decodes the file: image uint8 [channels, H, W]. Thread-safe. DataError naming
  /// the file when it cannot be decoded.
  Example get(size_t index) const override;
  int64_t num_classes() const override { return static_cast<int64_t>(classes_.size()); }
  int64_t channels() const override { return options_.channels; }
  std::string description() const override;
  std::vector<std::string> class_names() const override { return classes_; }

  const std::string& root() const { return root_; }
  /// Full path of example `index`.
  const std::string& file(size_t index) const { return files_.at(index); }
  int64_t label(size_t index) const override { return labels_.at(index); }

 private:
  std::string root_;
  ImageFolderOptions options_;
  std::vector<std::string> classes_, files_;
  std::vector<int64_t> labels_;
};

/// Checks every file of `dataset`: its header (fast) or, with full_decode, all its pixels.
/// Returns the bad ones in dataset order; throws nothing for bad images.
std::vector<BadImage> scan_images(const ImageFolderDataset& dataset, bool full_decode = false);

/// root/train or root/val as an ImageFolderDataset.
DatasetPtr load_image_folder(const std::string& root, bool train, ImageFolderOptions options = {});

}  // namespace rla::data
