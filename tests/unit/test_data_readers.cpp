// Dataset readers (CIFAR binary, image folders), image decoding/encoding, the resize transforms
// and PNG charts, all on files generated here. Broken inputs must give a DataError that names
// the file, never a crash and never silent garbage.
#include <gtest/gtest.h>
#include <png.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "rla/data/cifar.h"
#include "rla/data/image_folder.h"
#include "rla/data/image_io.h"
#include "rla/data/sources.h"
#include "rla/data/transforms.h"
#include "rla/plot/plot.h"
#include "rla/util/field_error.h"

namespace fs = std::filesystem;
using namespace rla::data;

namespace {

// A fresh folder under the system temp dir, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("rla_data_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  return read_file_bytes(path);
}

// Expects `fn` to throw DataError whose message contains every one of `parts`.
template <typename Fn>
void expect_data_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected a DataError mentioning " << parts.at(0);
  } catch (const DataError& e) {
    for (const auto& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// A CIFAR record: `label_bytes` then R, G, B planes; pixel (c, y, x) = (seed + 7c + 3y + x) mod 256.
std::vector<uint8_t> cifar_record(std::vector<uint8_t> labels, int seed) {
  std::vector<uint8_t> rec = labels;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) rec.push_back(static_cast<uint8_t>(seed + 7 * c + 3 * y + x));
  return rec;
}

uint8_t cifar_pixel(int seed, int c, int y, int x) {
  return static_cast<uint8_t>(seed + 7 * c + 3 * y + x);
}

// Writes a CIFAR-10 tree: batch b (1..5) holds `per_file` records with labels (b + i) % 10.
void write_cifar10(const std::string& folder, int per_file) {
  for (int b = 0; b <= 5; ++b) {
    std::vector<uint8_t> file;
    for (int i = 0; i < per_file; ++i) {
      const auto rec = cifar_record({static_cast<uint8_t>((b + i) % 10)}, 10 * b + i);
      file.insert(file.end(), rec.begin(), rec.end());
    }
    write_bytes(folder + (b == 0 ? "/test_batch.bin" : "/data_batch_" + std::to_string(b) + ".bin"), file);
  }
}

// A smooth colour image uint8 [3, h, w] (JPEG-friendly).
torch::Tensor smooth_image(int64_t h, int64_t w, int seed = 0) {
  auto y = torch::linspace(0, 1, h).view({1, h, 1});
  auto x = torch::linspace(0, 1, w).view({1, 1, w});
  auto c = torch::tensor({0.2f, 0.5f, 0.8f}).view({3, 1, 1});
  auto img = 127.5 + 100.0 * torch::sin(6.0 * x * (c + 0.1 * seed) + 4.0 * y * (1.0 - c));
  return img.round().clamp(0, 255).to(torch::kUInt8);
}

torch::Tensor random_image(int64_t c, int64_t h, int64_t w, int seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {c, h, w}, torch::kUInt8);
}

std::vector<uint8_t> png_simplified(uint32_t format, uint32_t w, uint32_t h, const void* pixels,
                                    const void* colormap = nullptr, uint32_t colormap_entries = 0) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.format = format;
  image.width = w;
  image.height = h;
  image.colormap_entries = colormap_entries;
  png_alloc_size_t size = 0;
  EXPECT_TRUE(png_image_write_get_memory_size(image, size, 0, pixels, 0, colormap));
  std::vector<uint8_t> out(size);
  EXPECT_TRUE(png_image_write_to_memory(&image, out.data(), &size, 0, pixels, 0, colormap));
  out.resize(size);
  return out;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// CIFAR

TEST(DataReaders, Cifar10ReadsPixelsLabelsAndClassNames) {
  TempDir dir;
  write_cifar10(dir / "cifar-10-batches-bin", 3);
  // The parent folder works too: the archive's folder name is looked up below it.
  auto train = load_cifar10(dir.path().string(), true);
  auto test = load_cifar10(dir / "cifar-10-batches-bin", false);
  ASSERT_EQ(train->size(), 15u);
  ASSERT_EQ(test->size(), 3u);
  EXPECT_EQ(train->num_classes(), 10);
  EXPECT_EQ(train->channels(), 3);
  for (int b = 1; b <= 5; ++b) {
    for (int i = 0; i < 3; ++i) {
      const auto ex = train->get((b - 1) * 3 + i);
      ASSERT_EQ(ex.image.sizes(), (std::vector<int64_t>{3, 32, 32}));
      ASSERT_EQ(ex.image.scalar_type(), torch::kUInt8);
      EXPECT_EQ(ex.label, (b + i) % 10);
      const int seed = 10 * b + i;
      EXPECT_EQ(ex.image[0][0][0].item<int>(), cifar_pixel(seed, 0, 0, 0));
      EXPECT_EQ(ex.image[1][5][9].item<int>(), cifar_pixel(seed, 1, 5, 9));
      EXPECT_EQ(ex.image[2][31][30].item<int>(), cifar_pixel(seed, 2, 31, 30));
    }
  }
  EXPECT_EQ(test->get(2).label, 2);
  EXPECT_EQ(train->class_names(), cifar10_class_names());
  EXPECT_EQ(train->class_names()[0], "airplane");
  EXPECT_EQ(train->class_names()[9], "truck");

  // batches.meta.txt, when present, names the classes.
  std::ofstream(dir / "cifar-10-batches-bin/batches.meta.txt")
      << "c0\nc1\nc2\nc3\nc4\nc5\nc6\nc7\nc8\nc9\n\n";
  EXPECT_EQ(load_cifar10(dir / "cifar-10-batches-bin", false)->class_names()[7], "c7");
}

TEST(DataReaders, Cifar100UsesFineLabels) {
  TempDir dir;
  std::vector<uint8_t> file;
  for (int i = 0; i < 4; ++i) {
    const auto rec = cifar_record({static_cast<uint8_t>(i % 20), static_cast<uint8_t>(99 - i)}, i);
    file.insert(file.end(), rec.begin(), rec.end());
  }
  write_bytes(dir / "train.bin", file);
  write_bytes(dir / "test.bin", std::vector<uint8_t>(file.begin(), file.begin() + 3074));
  auto train = load_cifar100(dir.path().string(), true);
  ASSERT_EQ(train->size(), 4u);
  EXPECT_EQ(train->num_classes(), 100);
  EXPECT_EQ(train->get(3).label, 96);
  EXPECT_EQ(train->get(3).image[2][4][5].item<int>(), cifar_pixel(3, 2, 4, 5));
  EXPECT_EQ(load_cifar100(dir.path().string(), false)->size(), 1u);
  const auto names = cifar100_class_names();
  ASSERT_EQ(names.size(), 100u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(names.front(), "apple");
  EXPECT_EQ(names.back(), "worm");
}

// The class-folder PNG tree (the layout of the public PNG copy of CIFAR-10): labels from the
// folder names in the official order, images dealt class by class, pixels exactly as written; and
// `write_cifar10_binary` packs it into binary files that read back identical.
TEST(DataReaders, Cifar10ClassFolderTreeReadsAndPacksToTheBinaryLayout) {
  TempDir dir;
  const auto& names = cifar10_class_names();
  // Class c holds 2 images in train (3 for "truck") and 1 in test; their pixels encode (c, j).
  auto image_of = [](int c, int j, int split) { return random_image(3, 32, 32, 100 * split + 10 * c + j); };
  for (int c = 0; c < 10; ++c) {
    fs::create_directories(dir / ("train/" + names[c]));
    fs::create_directories(dir / ("test/" + names[c]));
    for (int j = 0; j < (c == 9 ? 3 : 2); ++j)
      write_png(dir / ("train/" + names[c] + "/img_" + std::to_string(j) + ".png"), image_of(c, j, 0));
    write_png(dir / ("test/" + names[c] + "/x.png"), image_of(c, 0, 1));
  }
  std::ofstream(dir / "train/bird/notes.txt") << "not an image";  // ignored: not a .png
  const auto train = load_cifar10(dir.path().string(), true);
  const auto test = load_cifar10(dir.path().string(), false);
  ASSERT_EQ(train->size(), 21u);
  ASSERT_EQ(test->size(), 10u);
  EXPECT_EQ(train->class_names(), names);
  // Dealt by class: index 10 * j + c is image j of class c; the third truck comes last.
  for (int j = 0; j < 2; ++j) {
    for (int c = 0; c < 10; ++c) {
      const auto ex = train->get(static_cast<size_t>(10 * j + c));
      EXPECT_EQ(ex.label, c);
      EXPECT_TRUE(torch::equal(ex.image, image_of(c, j, 0))) << "class " << c << " image " << j;
    }
  }
  EXPECT_EQ(train->get(20).label, 9);
  EXPECT_TRUE(torch::equal(train->get(20).image, image_of(9, 2, 0)));
  EXPECT_TRUE(torch::equal(test->get(4).image, image_of(4, 0, 1)));

  // Packed into the binary layout and read back: the same images, labels and names, in order.
  const auto written = write_cifar10_binary(*train, *test, dir / "bin");
  EXPECT_EQ(written.size(), 7u);
  EXPECT_EQ(fs::file_size(dir / "bin/test_batch.bin"), 10u * 3073u);
  EXPECT_EQ(fs::file_size(dir / "bin/data_batch_1.bin"), 4u * 3073u);  // 21 images: 4, 4, 4, 4, 5
  EXPECT_EQ(fs::file_size(dir / "bin/data_batch_5.bin"), 5u * 3073u);
  const auto train_bin = load_cifar10(dir / "bin", true);
  const auto test_bin = load_cifar10(dir / "bin", false);
  ASSERT_EQ(train_bin->size(), train->size());
  ASSERT_EQ(test_bin->size(), test->size());
  for (size_t i = 0; i < train->size(); ++i) {
    EXPECT_EQ(train_bin->get(i).label, train->get(i).label);
    EXPECT_TRUE(torch::equal(train_bin->get(i).image, train->get(i).image)) << i;
  }
  for (size_t i = 0; i < test->size(); ++i)
    EXPECT_TRUE(torch::equal(test_bin->get(i).image, test->get(i).image));
  EXPECT_EQ(train_bin->class_names(), names);

  // Broken trees name the problem: a foreign class folder, a wrong size, an empty class.
  fs::create_directories(dir / "train/unicorn");
  expect_data_error([&] { load_cifar10(dir.path().string(), true); },
                    {"unicorn", "not a CIFAR-10 class folder"});
  fs::remove_all(dir / "train/unicorn");
  write_png(dir / "train/cat/big.png", random_image(3, 40, 32, 7));
  expect_data_error([&] { load_cifar10(dir.path().string(), true); },
                    {"big.png", "is 32x40, expected a 32x32"});
  fs::remove(dir / "train/cat/big.png");
  for (const auto& e : fs::directory_iterator(dir / "test/dog")) fs::remove(e.path());
  expect_data_error([&] { load_cifar10(dir.path().string(), false); }, {"dog", "no .png files"});
}

TEST(DataReaders, CifarBrokenFilesNameTheFileAndProblem) {
  TempDir dir;
  write_cifar10(dir.path().string(), 2);
  // Missing file.
  fs::remove(dir / "data_batch_4.bin");
  expect_data_error([&] { load_cifar10(dir.path().string(), true); }, {"data_batch_4.bin", "not found"});
  // Truncated: 10 bytes of a 3073-byte record.
  write_cifar10(dir.path().string(), 2);
  auto bytes = read_bytes(dir / "data_batch_3.bin");
  bytes.resize(3073 * 1 + 10);
  write_bytes(dir / "data_batch_3.bin", bytes);
  expect_data_error([&] { load_cifar10(dir.path().string(), true); },
                    {"data_batch_3.bin", "3083 bytes is not a whole number of 3073-byte records"});
  // Empty.
  write_bytes(dir / "test_batch.bin", {});
  expect_data_error([&] { load_cifar10(dir.path().string(), false); }, {"test_batch.bin", "empty"});
  // Label out of range.
  write_bytes(dir / "test_batch.bin", cifar_record({10}, 0));
  expect_data_error([&] { load_cifar10(dir.path().string(), false); }, {"test_batch.bin", "label 10"});
  // A CIFAR-100 file read with the CIFAR-10 record size, and a bad coarse label.
  write_bytes(dir / "test.bin", cifar_record({3, 250}, 0));
  expect_data_error([&] { load_cifar100(dir.path().string(), false); }, {"test.bin", "label 250"});
  write_bytes(dir / "test.bin", cifar_record({20, 5}, 0));
  expect_data_error([&] { load_cifar100(dir.path().string(), false); }, {"test.bin", "coarse label 20"});
  auto two = cifar_record({1, 2}, 0);
  two.insert(two.end(), two.begin(), two.end());
  write_bytes(dir / "test.bin", std::vector<uint8_t>(two.begin(), two.begin() + 2 * 3073));
  expect_data_error([&] { load_cifar100(dir.path().string(), false); }, {"test.bin", "3074-byte records"});
  // A names file with the wrong count.
  write_cifar10(dir.path().string(), 1);
  std::ofstream(dir / "batches.meta.txt") << "a\nb\n";
  expect_data_error([&] { load_cifar10(dir.path().string(), false); }, {"batches.meta.txt", "2 class names"});
}

// ------------------------------------------------------------------------------------------------
// Image decoding and encoding

TEST(ImageIo, PngRoundTripsExactly) {
  TempDir dir;
  const auto rgb = random_image(3, 17, 23, 1);
  const auto grey = random_image(1, 9, 31, 2);
  write_png(dir / "rgb.png", rgb);
  write_png(dir / "grey.png", grey);
  write_png(dir / "hwc.png", rgb.permute({1, 2, 0}));  // [H, W, C] is accepted too
  EXPECT_TRUE(torch::equal(read_image(dir / "rgb.png"), rgb));
  EXPECT_TRUE(torch::equal(read_image(dir / "hwc.png"), rgb));
  EXPECT_TRUE(torch::equal(read_image(dir / "grey.png"), grey));
  EXPECT_TRUE(torch::equal(read_image(dir / "grey.png", 3), grey.expand({3, 9, 31})));
  const auto info = read_image_info(dir / "rgb.png");
  EXPECT_EQ(info.format, ImageFormat::kPng);
  EXPECT_EQ(info.width, 23);
  EXPECT_EQ(info.height, 17);
  EXPECT_EQ(info.channels, 3);
  // The atomic writer leaves no temporary files behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 3);
}

TEST(ImageIo, PngPaletteAlphaAnd16BitBecomeRgb) {
  // Palette: 4 colours, indices 0..3.
  const uint8_t colormap[] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};
  const uint8_t indices[] = {0, 1, 2, 3, 3, 2};
  auto pal = png_simplified(PNG_FORMAT_RGB_COLORMAP, 3, 2, indices, colormap, 4);
  auto img = decode_image(pal.data(), pal.size(), "pal.png", 3);
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{3, 2, 3}));
  EXPECT_EQ(img[0][0][0].item<int>(), 255);
  EXPECT_EQ(img[1][0][1].item<int>(), 255);
  EXPECT_EQ(img[2][0][2].item<int>(), 255);
  EXPECT_EQ(img[2][1][0].item<int>(), 30);
  // RGBA: alpha is dropped, colour kept (like PIL's convert('RGB')).
  const uint8_t rgba[] = {10, 20, 30, 0, 40, 50, 60, 128};
  auto a = png_simplified(PNG_FORMAT_RGBA, 2, 1, rgba);
  img = decode_image(a.data(), a.size(), "rgba.png");
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{3, 1, 2}));
  EXPECT_EQ(img[1][0][0].item<int>(), 20);
  EXPECT_EQ(img[2][0][1].item<int>(), 60);
  // Grey + alpha to grey and to RGB.
  const uint8_t ga[] = {77, 255, 200, 10};
  auto g = png_simplified(PNG_FORMAT_GA, 2, 1, ga);
  EXPECT_EQ(decode_image(g.data(), g.size(), "ga.png").sizes(), (std::vector<int64_t>{1, 1, 2}));
  img = decode_image(g.data(), g.size(), "ga.png", 3);
  EXPECT_EQ(img[2][0][0].item<int>(), 77);
  EXPECT_EQ(img[0][0][1].item<int>(), 200);
  // 16-bit: the high byte survives.
  const uint16_t deep[] = {0x1234, 0xFF00, 0x00FF, 0xABCD, 0x8000, 0x0000};
  auto d = png_simplified(PNG_FORMAT_LINEAR_RGB, 2, 1, deep);
  img = decode_image(d.data(), d.size(), "deep.png");
  EXPECT_EQ(img[0][0][0].item<int>(), 0x12);
  EXPECT_EQ(img[1][0][0].item<int>(), 0xFF);
  EXPECT_EQ(img[0][0][1].item<int>(), 0xAB);
  // Colour to grey on request.
  EXPECT_EQ(decode_image(a.data(), a.size(), "rgba.png", 1).size(0), 1);
}

TEST(ImageIo, JpegDecodesCloseToTheSource) {
  TempDir dir;
  const auto src = smooth_image(48, 64);
  write_jpeg(dir / "cat.jpg", src, 95);
  const auto img = read_image(dir / "cat.jpg");
  ASSERT_EQ(img.sizes(), src.sizes());
  const auto diff = (img.to(torch::kFloat32) - src.to(torch::kFloat32)).abs();
  EXPECT_LT(diff.mean().item<float>(), 2.0f);
  EXPECT_LT(diff.max().item<float>(), 24.0f);
  const auto info = read_image_info(dir / "cat.jpg");
  EXPECT_EQ(info.format, ImageFormat::kJpeg);
  EXPECT_EQ(info.width, 64);
  // Grey JPEG: one channel as stored, three on request.
  write_jpeg(dir / "grey.jpg", src.slice(0, 1, 2), 95);
  EXPECT_EQ(read_image(dir / "grey.jpg").size(0), 1);
  const auto as_rgb = read_image(dir / "grey.jpg", 3);
  EXPECT_EQ(as_rgb.size(0), 3);
  EXPECT_TRUE(torch::equal(as_rgb[0], as_rgb[2]));
}

TEST(ImageIo, BrokenFilesGiveDataErrorsNamingTheFile) {
  TempDir dir;
  write_bytes(dir / "cat.jpg", {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'});
  expect_data_error([&] { read_image(dir / "cat.jpg"); }, {"cat.jpg", "not a JPEG or PNG image"});
  write_bytes(dir / "empty.png", {});
  expect_data_error([&] { read_image(dir / "empty.png"); }, {"empty.png", "empty"});
  expect_data_error([&] { read_image(dir / "missing.png"); }, {"missing.png", "cannot open"});

  const auto jpeg = encode_jpeg(random_image(3, 128, 128, 9), 90);  // mostly entropy-coded data
  write_bytes(dir / "cut.jpg", std::vector<uint8_t>(jpeg.begin(), jpeg.begin() + jpeg.size() / 2));
  expect_data_error([&] { read_image(dir / "cut.jpg"); }, {"cut.jpg", "truncated JPEG data"});
  // An end-of-image marker in the middle of the entropy-coded data: libjpeg only warns and would
  // fill the rest with grey; that must be an error, not a silently damaged picture.
  auto marker = jpeg;
  marker[marker.size() * 2 / 3] = 0xFF;
  marker[marker.size() * 2 / 3 + 1] = 0xD9;
  write_bytes(dir / "marker.jpg", marker);
  expect_data_error([&] { read_image(dir / "marker.jpg"); }, {"marker.jpg", "corrupt JPEG data"});
  write_bytes(dir / "head.jpg", std::vector<uint8_t>(jpeg.begin(), jpeg.begin() + 20));
  expect_data_error([&] { read_image(dir / "head.jpg"); }, {"head.jpg", "corrupt JPEG"});
  expect_data_error([&] { read_image_info(dir / "head.jpg"); }, {"head.jpg", "corrupt JPEG header"});

  const auto png = encode_png(random_image(3, 32, 32, 3));
  write_bytes(dir / "cut.png", std::vector<uint8_t>(png.begin(), png.begin() + png.size() / 2));
  expect_data_error([&] { read_image(dir / "cut.png"); }, {"cut.png", "truncated PNG"});
  auto crc = png;
  crc[crc.size() / 2] ^= 0x55;  // inside IDAT: CRC mismatch
  write_bytes(dir / "crc.png", crc);
  expect_data_error([&] { read_image(dir / "crc.png"); }, {"crc.png", "corrupt PNG"});
}

TEST(ImageIo, RandomCorruptionNeverCrashes) {
  const auto jpeg = encode_jpeg(smooth_image(40, 40), 80);
  const auto png = encode_png(smooth_image(40, 40));
  std::mt19937 rng(7);
  int errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    auto bytes = trial % 2 ? jpeg : png;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
    if (trial % 5 == 0) bytes.resize(rng() % bytes.size());
    try {
      const auto img = decode_image(bytes.data(), bytes.size(), "fuzz", 3);
      EXPECT_EQ(img.size(0), 3);
    } catch (const DataError& e) {
      ++errors;
      EXPECT_EQ(std::string(e.what()).rfind("fuzz", 0), 0u) << e.what();
    }
  }
  EXPECT_GT(errors, 0);
}

TEST(ImageIo, ResizeImageIsBilinear) {
  // Upsampling 2 -> 4 with align_corners=False: torch.nn.functional.interpolate gives
  // [0, 0.25, 0.75, 1] for [0, 1].
  const auto img = torch::tensor({0.0f, 1.0f}).view({1, 1, 2});
  const auto out = resize_image(img, 1, 4);
  EXPECT_TRUE(torch::allclose(out, torch::tensor({0.0f, 0.25f, 0.75f, 1.0f}).view({1, 1, 4})));
}

// ------------------------------------------------------------------------------------------------
// Image folders

TEST(DataReaders, ImageFolderSortsClassesAndFilesAndDecodesLazily) {
  TempDir dir;
  const std::string train = dir / "train";
  for (const char* sub : {"/zebra", "/apple/sub"}) fs::create_directories(train + sub);
  write_jpeg(train + "/zebra/b.JPG", smooth_image(20, 30, 1));
  write_jpeg(train + "/zebra/a.jpeg", smooth_image(20, 30, 2));
  write_png(train + "/apple/x.png", random_image(1, 8, 6, 4));  // grey: converted to RGB
  write_png(train + "/apple/sub/y.PNG", random_image(3, 5, 7, 5));
  write_bytes(train + "/apple/notes.txt", {'x'});
  fs::create_directories(train + "/.hidden");
  auto ds = load_image_folder(dir.path().string(), true);
  ASSERT_EQ(ds->size(), 4u);
  EXPECT_EQ(ds->num_classes(), 2);
  EXPECT_EQ(ds->class_names(), (std::vector<std::string>{"apple", "zebra"}));
  const auto& folder = dynamic_cast<const ImageFolderDataset&>(*ds);
  EXPECT_EQ(fs::path(folder.file(0)).filename(), "y.PNG");  // "sub/y.PNG" sorts before "x.png"
  EXPECT_EQ(fs::path(folder.file(0)).parent_path().filename(), "sub");
  EXPECT_EQ(fs::path(folder.file(2)).filename(), "a.jpeg");
  EXPECT_EQ(folder.label(1), 0);
  EXPECT_EQ(folder.label(3), 1);
  const auto grey = ds->get(1);
  ASSERT_EQ(grey.image.sizes(), (std::vector<int64_t>{3, 8, 6}));
  EXPECT_TRUE(torch::equal(grey.image[0], random_image(1, 8, 6, 4)[0]));
  EXPECT_EQ(ds->get(3).image.sizes(), (std::vector<int64_t>{3, 20, 30}));
  EXPECT_EQ(ds->get(3).label, 1);
  EXPECT_TRUE(scan_images(folder, true).empty());

  // Concurrent get() gives the same pixels as sequential get().
  std::vector<torch::Tensor> expected;
  for (size_t i = 0; i < ds->size(); ++i) expected.push_back(ds->get(i).image);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int rep = 0; rep < 20; ++rep)
        for (size_t i = 0; i < ds->size(); ++i)
          mismatches += torch::equal(ds->get(i).image, expected[i]) ? 0 : 1;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(DataReaders, ImageFolderEmptyAndBrokenInputs) {
  TempDir dir;
  expect_data_error([&] { load_image_folder(dir.path().string(), false); }, {"val", "not found"});
  fs::create_directories(dir / "val");
  expect_data_error([&] { load_image_folder(dir.path().string(), false); }, {"val", "no class folders"});
  fs::create_directories(dir / "val/dog");
  write_bytes(dir / "val/dog/readme.txt", {'x'});
  expect_data_error([&] { load_image_folder(dir.path().string(), false); }, {"dog", "no .jpg/.jpeg/.png"});

  write_jpeg(dir / "val/dog/good.jpg", smooth_image(16, 16));
  write_bytes(dir / "val/dog/bad.jpg", {0xFF, 0xD8, 0xFF, 0x00, 0x01, 0x02});
  write_bytes(dir / "val/dog/text.png", {'n', 'o', 't', ' ', 'a', ' ', 'p', 'n', 'g'});
  auto ds = load_image_folder(dir.path().string(), false);  // lazy: construction succeeds
  ASSERT_EQ(ds->size(), 3u);
  expect_data_error([&] { ds->get(0); }, {"bad.jpg", "corrupt JPEG"});
  expect_data_error([&] { ds->get(2); }, {"text.png", "not a JPEG or PNG image"});
  EXPECT_EQ(ds->get(1).image.size(0), 3);
  const auto bad = scan_images(dynamic_cast<const ImageFolderDataset&>(*ds));
  ASSERT_EQ(bad.size(), 2u);
  EXPECT_NE(bad[0].path.find("bad.jpg"), std::string::npos);
  EXPECT_NE(bad[1].problem.find("text.png"), std::string::npos);
  ImageFolderOptions verify;
  verify.verify = true;
  expect_data_error([&] { load_image_folder(dir.path().string(), false, verify); },
                    {"2 unreadable image(s)", "bad.jpg", "text.png"});

  // train/ with other class folders than val/: refused (labels are positions among the names).
  fs::create_directories(dir / "train/cat");
  write_jpeg(dir / "train/cat/a.jpg", smooth_image(16, 16));
  DataConfig config;
  config.dataset = "folder";
  config.root = dir.path().string();
  try {
    open_data(config);
    ADD_FAILURE() << "different class folders accepted";
  } catch (const rla::util::FieldError& e) {
    EXPECT_NE(std::string(e.what()).find("different class folders (cat and dog)"), std::string::npos)
        << e.what();
  }
  fs::create_directories(dir / "train/dog");
  write_jpeg(dir / "train/dog/b.jpg", smooth_image(16, 16));
  fs::create_directories(dir / "val/cat");
  write_jpeg(dir / "val/cat/c.jpg", smooth_image(16, 16));
  EXPECT_EQ(open_data(config).test->class_names(), (std::vector<std::string>{"cat", "dog"}));
}

// ------------------------------------------------------------------------------------------------
// RandomResizedCrop and Resize + CenterCrop

TEST(ResizeTransforms, RandomResizedCropShapeAndDeterminism) {
  const auto img = torch::rand({3, 120, 160});
  const auto rrc = random_resized_crop(64);
  Rng a(42), b(42), c(43);
  const auto out_a = rrc(img, a);
  ASSERT_EQ(out_a.sizes(), (std::vector<int64_t>{3, 64, 64}));
  EXPECT_TRUE(torch::equal(out_a, rrc(img, b)));
  EXPECT_FALSE(torch::equal(out_a, rrc(img, c)));
  EXPECT_GE(out_a.min().item<float>(), 0.0f);
  EXPECT_LE(out_a.max().item<float>(), 1.0f);
  // Whole-image scale on a square image: the crop is the whole image, resized.
  const auto square = torch::rand({3, 50, 50});
  EXPECT_TRUE(torch::allclose(random_resized_crop(32, 1.0, 1.0)(square, a), resize_image(square, 32, 32)));
}

TEST(ResizeTransforms, RandomResizedCropFallsBackToCentreCrop) {
  // 8 x 200 with scale >= 0.9: no random box fits, so torchvision's fallback takes the centred
  // box of ratio 4/3: height 8, width round(8 * 4/3) = 11, left (200 - 11) / 2 = 94.
  const auto img = torch::rand({3, 8, 200});
  Rng rng(1);
  const auto out = random_resized_crop(16, 0.9, 1.0)(img, rng);
  const auto expected = resize_image(img.slice(2, 94, 105).contiguous(), 16, 16);
  EXPECT_TRUE(torch::allclose(out, expected));
}

TEST(ResizeTransforms, ResizeCenterCropMatchesTorchvision) {
  Rng rng(0);
  const auto constant = torch::full({3, 300, 400}, 0.37f);
  const auto out = resize_center_crop(256, 224)(constant, rng);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 224, 224}));
  EXPECT_TRUE(torch::allclose(out, torch::full_like(out, 0.37f)));
  // Resize(256): 300x400 -> 256x341 (int(256 * 400 / 300)); CenterCrop(224): top
  // round(32 / 2) = 16, left round(117 / 2) = 58 (Python rounds halves to even).
  const auto img = torch::rand({3, 300, 400});
  const auto expected = resize_image(img, 256, 341).slice(1, 16, 240).slice(2, 58, 282);
  EXPECT_TRUE(torch::allclose(resize_center_crop(256, 224)(img, rng), expected));
  // Portrait images keep their orientation; a crop larger than the image is zero-padded.
  EXPECT_EQ(resize_center_crop(20, 30)(torch::rand({1, 40, 20}), rng).sizes(),
            (std::vector<int64_t>{1, 30, 30}));
}

// ------------------------------------------------------------------------------------------------
// Charts

TEST(Plot, WritesTwoPanelPng) {
  if (!rla::plot::png_charts_available()) GTEST_SKIP() << "PLplot/pngcairo not available in this build";
  TempDir dir;
  rla::plot::Chart loss{"Training loss", "epoch", "cross-entropy loss", {}, false};
  rla::plot::Chart acc{"Top-1 accuracy", "epoch", "accuracy (%)", {}, false};
  for (const char* name : {"resnet20 train", "rla_resnet20 train", "resnet20 val"}) {
    rla::plot::Series l{name, {}, {}}, a{name, {}, {}};
    for (int e = 1; e <= 10; ++e) {
      l.x.push_back(e);
      l.y.push_back(2.0 / e + 0.1 * name[0] / 100.0);
      a.x.push_back(e);
      a.y.push_back(100.0 - 40.0 / e - name[1] / 50.0);
    }
    loss.series.push_back(l);
    acc.series.push_back(a);
  }
  const std::string path = dir / "curves.png";
  rla::plot::save_charts_png(path, {loss, acc});
  const auto bytes = read_bytes(path);
  ASSERT_GT(bytes.size(), 10000u);
  const uint8_t signature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  EXPECT_TRUE(std::equal(signature, signature + 8, bytes.begin()));
  const auto info = read_image_info(path);
  EXPECT_EQ(info.width, 2 * 640);
  EXPECT_EQ(info.height, 480);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
  // A log-x panel with a non-positive point (skipped), drawn from two threads at once:
  // PLplot's global state is serialised inside save_charts_png.
  rla::plot::Chart macs{"Accuracy vs compute",
                        "MACs per image (M)",
                        "accuracy (%)",
                        {{"rla", {0, 5, 10, 40}, {80, 85, 90, 92}}},
                        true};
  std::thread other([&] { rla::plot::save_charts_png(dir / "log_a.png", {macs}, 1); });
  rla::plot::save_charts_png(dir / "log_b.png", {macs}, 1);
  other.join();
  EXPECT_EQ(read_bytes(dir / "log_a.png"), read_bytes(dir / "log_b.png"));
  EXPECT_EQ(read_image_info(dir / "log_a.png").width, 640);

  rla::plot::Chart bad{"bad", "x", "y", {{"s", {1, 2}, {1}}}, false};
  EXPECT_THROW(rla::plot::save_charts_png(dir / "bad.png", {bad}), std::invalid_argument);
  EXPECT_THROW(rla::plot::save_charts_png(dir / "no/such/dir.png", {loss}), std::runtime_error);
}
