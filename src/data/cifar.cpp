#include "rla/data/cifar.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "rla/data/image_io.h"

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
  std::vector<std::string> files;
  if (train) {
    for (int i = 1; i <= 5; ++i) files.push_back("data_batch_" + std::to_string(i) + ".bin");
  } else {
    files.push_back("test_batch.bin");
  }
  return load(root, train, kCifar10, files, cifar10_class_names());
}

DatasetPtr load_cifar100(const std::string& root, bool train) {
  return load(root, train, kCifar100, {train ? "train.bin" : "test.bin"}, cifar100_class_names());
}

}  // namespace rla::data
