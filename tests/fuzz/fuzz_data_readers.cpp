// libFuzzer target for the readers that user files reach through `rla predict`, `train` and
// `eval`: image decoding (PNG / JPEG, also with a forced channel count), IDX image + label
// files, CIFAR-10 / CIFAR-100 binary batches, and an image folder holding the input as a file.
// The first byte chooses the reader; the rest is the file. Any exception is a clean refusal; a
// crash, sanitizer report, leak, timeout or out-of-memory is a bug.
#include <unistd.h>

#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "rla/data/cifar.h"
#include "rla/data/idx.h"
#include "rla/data/image_folder.h"
#include "rla/data/image_io.h"

namespace {

namespace fs = std::filesystem;

// One scratch folder per fuzzing process, emptied for every input.
const fs::path& scratch() {
  static const fs::path dir = fs::temp_directory_path() / ("rla_fuzz_data_" + std::to_string(::getpid()));
  return dir;
}

void write(const fs::path& path, const uint8_t* data, size_t size) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

void touch_all(const rla::data::Dataset& ds) {
  for (size_t i = 0; i < ds.size() && i < 4; ++i) ds.get(i);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 6;
  ++data, --size;
  std::error_code ec;
  fs::remove_all(scratch(), ec);
  try {
    switch (mode) {
      case 0:
      case 1: {  // decode with the file's own channels, or forced to 1 / 3
        const int channels = mode == 0 ? 0 : (size % 2 ? 1 : 3);
        rla::data::decode_image_info(data, size, "fuzz");
        rla::data::decode_image(data, size, "fuzz", channels);
        break;
      }
      case 2: {  // IDX: the input split into an image file and a label file at a point it chooses
        const size_t cut = size >= 2 ? (static_cast<size_t>(data[0]) << 8 | data[1]) % (size - 1) : 0;
        const size_t skip = size >= 2 ? 2 : 0;
        const size_t head = cut > skip ? cut : skip;
        write(scratch() / "images", data + skip, head - skip);
        write(scratch() / "labels", data + head, size - head);
        touch_all(*rla::data::load_idx((scratch() / "images").string(), (scratch() / "labels").string(), 10,
                                       "fuzz"));
        break;
      }
      case 3:  // a CIFAR-10 test batch
        write(scratch() / "test_batch.bin", data, size);
        touch_all(*rla::data::load_cifar10(scratch().string(), false));
        break;
      case 4:  // a CIFAR-100 test batch
        write(scratch() / "test.bin", data, size);
        touch_all(*rla::data::load_cifar100(scratch().string(), false));
        break;
      default: {  // an image folder with the input as its one image
        write(scratch() / "train" / "cat" / "image.png", data, size);
        const auto ds = rla::data::load_image_folder(scratch().string(), true);
        rla::data::scan_images(*std::static_pointer_cast<const rla::data::ImageFolderDataset>(ds), true);
        touch_all(*ds);
        break;
      }
    }
  } catch (const std::exception&) {
  }
  return 0;
}
