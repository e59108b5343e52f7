#include "rla/data/idx.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

namespace rla::data {
namespace {

uint32_t be32(const std::string& b, size_t off) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data()) + off;
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

constexpr size_t kMaxBytes = size_t(4) << 30;  // refuse to inflate more than 4 GiB

}  // namespace

std::string read_maybe_gzip(const std::string& path) {
  std::ifstream probe(path, std::ios::binary);
  if (!probe) throw DataError(fmt::format("{}: cannot open file", path));
  unsigned char magic[2] = {0, 0};
  probe.read(reinterpret_cast<char*>(magic), 2);
  probe.close();
  std::string out;
  if (magic[0] == 0x1f && magic[1] == 0x8b) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) throw DataError(fmt::format("{}: cannot open gzip file", path));
    char buf[1 << 16];
    int n = 0;
    while ((n = gzread(f, buf, sizeof(buf))) > 0) {
      out.append(buf, static_cast<size_t>(n));
      if (out.size() > kMaxBytes) {
        gzclose(f);
        throw DataError(fmt::format("{}: decompresses to more than 4 GiB", path));
      }
    }
    int err = 0;
    const char* msg = gzerror(f, &err);
    const bool failed = n < 0 || (err != Z_OK && err != Z_STREAM_END);
    const std::string what = failed && msg ? msg : "";
    gzclose(f);
    if (failed)
      throw DataError(fmt::format("{}: corrupt gzip data ({})", path, what.empty() ? "read error" : what));
  } else {
    std::ifstream in(path, std::ios::binary);
    out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

std::shared_ptr<TensorDataset> load_idx(const std::string& images_path, const std::string& labels_path,
                                        int64_t num_classes, const std::string& description,
                                        std::vector<std::string> class_names) {
  const std::string img = read_maybe_gzip(images_path);
  const std::string lab = read_maybe_gzip(labels_path);
  if (img.size() < 16)
    throw DataError(fmt::format("{}: {} bytes, too short for an IDX image header", images_path, img.size()));
  if (lab.size() < 8)
    throw DataError(fmt::format("{}: {} bytes, too short for an IDX label header", labels_path, lab.size()));
  if (be32(img, 0) != 0x803)
    throw DataError(fmt::format("{}: wrong magic 0x{:08x} (expected 0x00000803 for IDX images)", images_path,
                                be32(img, 0)));
  if (be32(lab, 0) != 0x801)
    throw DataError(fmt::format("{}: wrong magic 0x{:08x} (expected 0x00000801 for IDX labels)", labels_path,
                                be32(lab, 0)));
  const uint64_t n = be32(img, 4), h = be32(img, 8), w = be32(img, 12), nl = be32(lab, 4);
  if (h == 0 || w == 0 || h > 4096 || w > 4096)
    throw DataError(fmt::format("{}: implausible image size {}x{}", images_path, h, w));
  if (img.size() != 16 + n * h * w)
    throw DataError(fmt::format(
        "{}: header declares {} images of {}x{} ({} bytes) but the data holds {} bytes{}", images_path, n, h,
        w, n * h * w, img.size() - 16, img.size() < 16 + n * h * w ? " (truncated?)" : ""));
  if (lab.size() != 8 + nl)
    throw DataError(fmt::format("{}: header declares {} labels but the data holds {}{}", labels_path, nl,
                                lab.size() - 8, lab.size() < 8 + nl ? " (truncated?)" : ""));
  if (n != nl)
    throw DataError(
        fmt::format("{} holds {} images but {} holds {} labels", images_path, n, labels_path, nl));
  auto images = torch::empty({int64_t(n), 1, int64_t(h), int64_t(w)}, torch::kByte);
  std::memcpy(images.data_ptr<uint8_t>(), img.data() + 16, n * h * w);
  auto labels = torch::empty({int64_t(n)}, torch::kLong);
  auto* lp = labels.data_ptr<int64_t>();
  for (uint64_t i = 0; i < n; ++i) {
    lp[i] = static_cast<unsigned char>(lab[8 + i]);
    if (lp[i] >= num_classes)
      throw DataError(fmt::format("{}: label {} at index {} is out of range [0, {})", labels_path, lp[i], i,
                                  num_classes));
  }
  return std::make_shared<TensorDataset>(images, labels, num_classes, description, std::move(class_names));
}

}  // namespace rla::data
