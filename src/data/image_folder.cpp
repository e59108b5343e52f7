#include "rla/data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "rla/data/image_io.h"

namespace rla::data {
namespace {

namespace fs = std::filesystem;

bool is_image_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// Sorted class folder names (hidden folders skipped), like ImageFolder.find_classes.
std::vector<std::string> list_classes(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw DataError(root + ": image folder not found");
  std::vector<std::string> classes;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.empty() && name[0] != '.' && entry.is_directory(ec)) classes.push_back(name);
  }
  if (ec) throw DataError(root + ": cannot list (" + ec.message() + ")");
  std::sort(classes.begin(), classes.end());
  if (classes.empty()) throw DataError(root + ": no class folders (expected root/<class>/<image>.jpg)");
  return classes;
}

// Every image file below `folder`, following symlinks, sorted by path.
std::vector<std::string> list_images(const fs::path& folder) {
  std::error_code ec;
  std::vector<std::string> files;
  fs::recursive_directory_iterator it(folder, fs::directory_options::follow_directory_symlink, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (is_image_file(it->path()) && it->is_regular_file(ec)) files.push_back(it->path().string());
  }
  if (ec) throw DataError(folder.string() + ": cannot list (" + ec.message() + ")");
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

ImageFolderDataset::ImageFolderDataset(std::string root, ImageFolderOptions options)
    : root_(std::move(root)), options_(options) {
  if (options_.channels != 1 && options_.channels != 3) {
    throw std::invalid_argument("ImageFolderDataset: channels must be 1 or 3, got " +
                                std::to_string(options_.channels));
  }
  classes_ = list_classes(root_);
  for (size_t c = 0; c < classes_.size(); ++c) {
    const fs::path folder = fs::path(root_) / classes_[c];
    auto files = list_images(folder);
    if (files.empty()) throw DataError(folder.string() + ": class folder has no .jpg/.jpeg/.png files");
    files_.insert(files_.end(), files.begin(), files.end());
    labels_.insert(labels_.end(), files.size(), static_cast<int64_t>(c));
  }
  if (options_.verify) {
    const auto bad = scan_images(*this);
    if (!bad.empty()) {
      std::string message =
          root_ + ": " + std::to_string(bad.size()) + " unreadable image(s): " + bad[0].problem;
      for (size_t i = 1; i < bad.size() && i < 5; ++i) message += "; " + bad[i].problem;
      if (bad.size() > 5) message += "; ...";
      throw DataError(message);
    }
  }
}

Example ImageFolderDataset::get(size_t index) const {
  if (index >= files_.size()) {
    throw std::out_of_range("ImageFolderDataset::get: index " + std::to_string(index) + " of " +
                            std::to_string(files_.size()));
  }
  return {read_image(files_[index], options_.channels), labels_[index]};
}

std::string ImageFolderDataset::description() const {
  return "image folder (" + std::to_string(files_.size()) + " images, " + std::to_string(classes_.size()) +
         " classes, " + root_ + ")";
}

std::vector<BadImage> scan_images(const ImageFolderDataset& dataset, bool full_decode) {
  std::vector<BadImage> bad;
  for (size_t i = 0; i < dataset.size(); ++i) {
    const std::string& path = dataset.file(i);
    try {
      if (full_decode) {
        read_image(path, static_cast<int>(dataset.channels()));
      } else {
        read_image_info(path);
      }
    } catch (const DataError& e) {
      bad.push_back({path, e.what()});
    }
  }
  return bad;
}

DatasetPtr load_image_folder(const std::string& root, bool train, ImageFolderOptions options) {
  return std::make_shared<ImageFolderDataset>((fs::path(root) / (train ? "train" : "val")).string(), options);
}

}  // namespace rla::data
