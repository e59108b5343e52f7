#include "rla/data/cifar.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <utility>

#include "rla/data/image_io.h"
#include "rla/util/file.h"

namespace rla::data {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kPixels = 3 * 32 * 32;

struct CifarFormat {
  const char* name;           // "CIFAR-10"
  const char* folder;         // the archive's folder, tried below `root`
  const char* probe;          // a file that marks the right folder
  int64_t label_bytes;        // bytes before the pixels
  int64_t label_offset;       // which of them is the label we keep
  int64_t num_classes;        // range of that label
  int64_t other_label_limit;  // range of the other label byte (CIFAR-100 coarse), 0 if none
  const char* names_file;     // optional class-name list
};

constexpr CifarFormat kCifar10{"CIFAR-10", "cifar-10-batches-bin", "test_batch.bin", 1, 0, 10,
                               0,          "batches.meta.txt"};
constexpr CifarFormat kCifar100{"CIFAR-100", "cifar-100-binary",    "test.bin", 2, 1, 100,
                                20,          "fine_label_names.txt"};

// `root` itself when it holds the files, else root/<archive folder> when that does.
std::string resolve_folder(const std::string& root, const CifarFormat& fmt) {
  if (fs::exists(fs::path(root) / fmt.probe)) return root;
  const fs::path nested = fs::path(root) / fmt.folder;
  if (fs::is_directory(nested)) return nested.string();
  return root;
}

// Appends the records of one file to images/labels, validating size and label ranges.
void read_records(const std::string& path, const CifarFormat& fmt, std::vector<uint8_t>& pixels,
                  std::vector<int64_t>& labels) {
  if (!fs::exists(path))
    throw DataError(path + ": file not found (" + fmt.name + " binary version expected)");
  const auto bytes = read_file_bytes(path);
  const int64_t record = fmt.label_bytes + kPixels;
  const auto size = static_cast<int64_t>(bytes.size());
  if (size == 0) throw DataError(path + ": empty file");
  if (size % record != 0) {
    throw DataError(path + ": " + std::to_string(size) + " bytes is not a whole number of " +
                    std::to_string(record) + "-byte records (truncated?)");
  }
  const int64_t n = size / record;
  const size_t first = labels.size();
  labels.resize(first + n);
  pixels.resize((first + n) * kPixels);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* rec = bytes.data() + i * record;
    const int64_t label = rec[fmt.label_offset];
    if (label >= fmt.num_classes) {
      throw DataError(path + ": record " + std::to_string(i) + " has label " + std::to_string(label) +
                      ", outside 0.." + std::to_string(fmt.num_classes - 1));
    }
    if (fmt.other_label_limit > 0 && rec[0] >= fmt.other_label_limit) {
      throw DataError(path + ": record " + std::to_string(i) + " has coarse label " + std::to_string(rec[0]) +
                      ", outside 0.." + std::to_string(fmt.other_label_limit - 1));
    }
    labels[first + i] = label;
    std::memcpy(pixels.data() + (first + i) * kPixels, rec + fmt.label_bytes, kPixels);
  }
}

// One name per non-empty line; must list exactly num_classes names.
std::vector<std::string> read_names(const std::string& folder, const CifarFormat& fmt,
                                    const std::vector<std::string>& fallback) {
  const fs::path path = fs::path(folder) / fmt.names_file;
  std::ifstream in(path);
  if (!in) return fallback;
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (static_cast<int64_t>(names.size()) != fmt.num_classes) {
    throw DataError(path.string() + ": lists " + std::to_string(names.size()) + " class names, expected " +
                    std::to_string(fmt.num_classes));
  }
  return names;
}

DatasetPtr load(const std::string& root, bool train, const CifarFormat& fmt,
                const std::vector<std::string>& files, const std::vector<std::string>& default_names) {
  const std::string folder = resolve_folder(root, fmt);
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  for (const auto& file : files) read_records((fs::path(folder) / file).string(), fmt, pixels, labels);
  const auto n = static_cast<int64_t>(labels.size());
  // Hand the pixel buffer to the tensor instead of copying it (150 MB for CIFAR-10 train).
  auto* owner = new std::vector<uint8_t>(std::move(pixels));
  auto images = torch::from_blob(
      owner->data(), {n, 3, 32, 32}, [owner](void*) { delete owner; }, torch::kUInt8);
  auto label_tensor = torch::from_blob(labels.data(), {n}, torch::kInt64).clone();
  const std::string description = std::string(fmt.name) + (train ? " train" : " test") + " (" +
                                  std::to_string(n) + " images, " + folder + ")";
  return std::make_shared<TensorDataset>(images, label_tensor, fmt.num_classes, description,
                                         read_names(folder, fmt, default_names));
}

bool is_png(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".png";
}

// The class-folder tree root/{train,test}/<class>/*.png: labels by the position of the folder's
// name among `names` (the official label order). The images are dealt class by class, in sorted
// file order within each class (the first file of every class, then the second, ...), so that
// every prefix of the set (--limit-train) is class-balanced. Every image must decode to 3x32x32;
// the pixels are copied once into one uint8 [N, 3, 32, 32] tensor.
DatasetPtr load_folder(const fs::path& split_dir, bool train, const char* title, int64_t num_classes,
                       const std::vector<std::string>& names) {
  std::vector<std::vector<fs::path>> by_class(static_cast<size_t>(num_classes));
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(split_dir)) {
    if (!entry.is_directory()) continue;
    const std::string cls = entry.path().filename().string();
    const auto it = std::find(names.begin(), names.end(), cls);
    if (it == names.end())
      throw DataError(entry.path().string() + ": not a " + title + " class folder (expected one of the " +
                      std::to_string(num_classes) + " class names, e.g. '" + names.front() + "')");
    found.push_back(cls);
    const int64_t label = it - names.begin();
    for (const auto& file : fs::directory_iterator(entry.path()))
      if (file.is_regular_file() && is_png(file.path()))
        by_class[static_cast<size_t>(label)].push_back(file.path());
  }
  for (size_t label = 0; label < by_class.size(); ++label)
    if (by_class[label].empty()) throw DataError((split_dir / names[label]).string() + ": no .png files");
  if (static_cast<int64_t>(found.size()) != num_classes)
    throw DataError(split_dir.string() + ": holds " + std::to_string(found.size()) +
                    " class folders, expected " + std::to_string(num_classes));
  std::vector<std::pair<int64_t, fs::path>> files;
  size_t longest = 0;
  for (auto& paths : by_class) {
    std::sort(paths.begin(), paths.end());
    longest = std::max(longest, paths.size());
  }
  for (size_t j = 0; j < longest; ++j)
    for (size_t label = 0; label < by_class.size(); ++label)
      if (j < by_class[label].size()) files.emplace_back(static_cast<int64_t>(label), by_class[label][j]);
  const auto n = static_cast<int64_t>(files.size());
  auto images = torch::empty({n, 3, 32, 32}, torch::kUInt8);
  auto labels = torch::empty({n}, torch::kInt64);
  auto* pixels = images.data_ptr<uint8_t>();
  auto* label_out = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& [label, path] = files[static_cast<size_t>(i)];
    const auto image = read_image(path.string(), 3);
    if (image.size(1) != 32 || image.size(2) != 32)
      throw DataError(path.string() + ": is " + std::to_string(image.size(2)) + "x" +
                      std::to_string(image.size(1)) + ", expected a 32x32 " + title + " image");
    std::memcpy(pixels + i * kPixels, image.contiguous().data_ptr<uint8_t>(), kPixels);
    label_out[i] = label;
  }
  const std::string description = std::string(title) + (train ? " train" : " test") + " (" +
                                  std::to_string(n) + " images, " + split_dir.string() + ")";
  return std::make_shared<TensorDataset>(images, labels, num_classes, description, names);
}

// root/train and root/test, when `root` is a class-folder tree (and holds no binary files).
std::optional<fs::path> folder_split(const std::string& root, const CifarFormat& fmt, bool train) {
  if (fs::exists(fs::path(resolve_folder(root, fmt)) / fmt.probe)) return std::nullopt;
  const fs::path dir = fs::path(root) / (train ? "train" : "test");
  if (fs::is_directory(dir)) return dir;
  return std::nullopt;
}

}  // namespace

const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names{"airplane", "automobile", "bird",  "cat",  "deer",
                                              "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

// The fine labels of CIFAR-100 in label order (alphabetical, as in the archive's meta file).
const std::vector<std::string>& cifar100_class_names() {
  static const std::vector<std::string> names{
      "apple",       "aquarium_fish", "baby",      "bear",       "beaver",       "bed",
      "bee",         "beetle",        "bicycle",   "bottle",     "bowl",         "boy",
      "bridge",      "bus",           "butterfly", "camel",      "can",          "castle",
      "caterpillar", "cattle",        "chair",     "chimpanzee", "clock",        "cloud",
      "cockroach",   "couch",         "crab",      "crocodile",  "cup",          "dinosaur",
      "dolphin",     "elephant",      "flatfish",  "forest",     "fox",          "girl",
      "hamster",     "house",         "kangaroo",  "keyboard",   "lamp",         "lawn_mower",
      "leopard",     "lion",          "lizard",    "lobster",    "man",          "maple_tree",
      "motorcycle",  "mountain",      "mouse",     "mushroom",   "oak_tree",     "orange",
      "orchid",      "otter",         "palm_tree", "pear",       "pickup_truck", "pine_tree",
      "plain",       "plate",         "poppy",     "porcupine",  "possum",       "rabbit",
      "raccoon",     "ray",           "road",      "rocket",     "rose",         "sea",
      "seal",        "shark",         "shrew",     "skunk",      "skyscraper",   "snail",
      "snake",       "spider",        "squirrel",  "streetcar",  "sunflower",    "sweet_pepper",
      "table",       "tank",          "telephone", "television", "tiger",        "tractor",
      "train",       "trout",         "tulip",     "turtle",     "wardrobe",     "whale",
      "willow_tree", "wolf",          "woman",     "worm"};
  return names;
}

DatasetPtr load_cifar10(const std::string& root, bool train) {
  if (const auto dir = folder_split(root, kCifar10, train))
    return load_folder(*dir, train, kCifar10.name, kCifar10.num_classes, cifar10_class_names());
  std::vector<std::string> files;
  if (train) {
    for (int i = 1; i <= 5; ++i) files.push_back("data_batch_" + std::to_string(i) + ".bin");
  } else {
    files.push_back("test_batch.bin");
  }
  return load(root, train, kCifar10, files, cifar10_class_names());
}

DatasetPtr load_cifar100(const std::string& root, bool train) {
  if (const auto dir = folder_split(root, kCifar100, train))
    return load_folder(*dir, train, kCifar100.name, kCifar100.num_classes, cifar100_class_names());
  return load(root, train, kCifar100, {train ? "train.bin" : "test.bin"}, cifar100_class_names());
}

}  // namespace rla::data

namespace rla::data {

std::vector<std::string> write_cifar10_binary(const Dataset& train, const Dataset& test,
                                              const std::string& out_dir) {
  auto records = [](const Dataset& set, size_t begin, size_t end) {
    std::string bytes;
    bytes.reserve((end - begin) * static_cast<size_t>(1 + kPixels));
    for (size_t i = begin; i < end; ++i) {
      const auto ex = set.get(i);
      if (ex.image.scalar_type() != torch::kUInt8 || ex.image.sizes() != torch::IntArrayRef{3, 32, 32})
        throw DataError(set.description() + ": image " + std::to_string(i) + " is not uint8 [3, 32, 32]");
      if (ex.label < 0 || ex.label >= 10)
        throw DataError(set.description() + ": image " + std::to_string(i) + " has label " +
                        std::to_string(ex.label) + ", outside 0..9");
      bytes.push_back(static_cast<char>(ex.label));
      const auto image = ex.image.contiguous();
      bytes.append(reinterpret_cast<const char*>(image.data_ptr<uint8_t>()), kPixels);
    }
    return bytes;
  };
  fs::create_directories(out_dir);
  std::vector<std::string> written;
  auto write = [&](const std::string& name, const std::string& bytes) {
    const auto path = (fs::path(out_dir) / name).string();
    util::write_file_atomic(path, bytes);
    written.push_back(path);
  };
  const size_t n = train.size();
  for (size_t b = 0; b < 5; ++b)
    write("data_batch_" + std::to_string(b + 1) + ".bin", records(train, n * b / 5, n * (b + 1) / 5));
  write("test_batch.bin", records(test, 0, test.size()));
  std::string names;
  for (const auto& name : train.class_names()) names += name + "\n";
  write("batches.meta.txt", names);
  return written;
}

}  // namespace rla::data
