// Bounded byte sources and the zip central-directory check used before PyTorchStreamReader
// (whose getRecord allocates whatever size the directory declares).
#include "zip_bounds.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace rla::io::detail {

size_t MemoryAdapter::read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const {
  if (pos >= size_) return 0;
  n = std::min<uint64_t>(n, size_ - pos);
  std::memcpy(buf, data_ + pos, n);
  return n;
}

FileAdapter::FileAdapter(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw std::runtime_error(fmt::format("'{}' is not a regular file", path));
  }
  size_ = static_cast<size_t>(st.st_size);
}

FileAdapter::~FileAdapter() {
  if (fd_ >= 0) ::close(fd_);
}

size_t FileAdapter::read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const {
  if (pos >= size_) return 0;
  n = std::min<uint64_t>(n, size_ - pos);
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd_, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(pos + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

namespace {

constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kEocd64Sig = 0x06064b50;
constexpr uint32_t kLocatorSig = 0x07064b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint64_t kMaxDeflateRatio = 1032;

uint64_t le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

[[noreturn]] void bad(const std::string& what) {
  throw std::runtime_error("corrupt zip archive: " + what);
}

std::vector<uint8_t> read_exact(const caffe2::serialize::ReadAdapterInterface& in, uint64_t pos, uint64_t n) {
  if (pos > in.size() || n > in.size() - pos) bad(fmt::format("{} bytes at {} lie past the end", n, pos));
  std::vector<uint8_t> buf(n);
  if (n && in.read(pos, buf.data(), n) != n) bad(fmt::format("short read at {}", pos));
  return buf;
}

struct Directory {
  uint64_t entries = 0, offset = 0, size = 0;
};

Directory find_directory(const caffe2::serialize::ReadAdapterInterface& in) {
  const uint64_t size = in.size();
  if (size < 22) bad("shorter than an end-of-directory record");
  const uint64_t tail_len = std::min<uint64_t>(size, 22 + 65535);
  const auto tail = read_exact(in, size - tail_len, tail_len);
  int64_t at = -1;
  for (int64_t i = static_cast<int64_t>(tail_len) - 22; i >= 0; --i) {
    if (le(&tail[i], 4) == kEocdSig) {
      at = i;
      break;
    }
  }
  if (at < 0) bad("no end-of-central-directory record");
  const uint8_t* e = &tail[at];
  Directory d{le(e + 10, 2), le(e + 16, 4), le(e + 12, 4)};
  if (d.entries == 0xFFFF || d.offset == 0xFFFFFFFF || d.size == 0xFFFFFFFF) {
    const uint64_t eocd_pos = size - tail_len + static_cast<uint64_t>(at);
    if (eocd_pos < 20) bad("zip64 locator missing");
    const auto loc = read_exact(in, eocd_pos - 20, 20);
    if (le(loc.data(), 4) != kLocatorSig) bad("zip64 locator missing");
    const auto z = read_exact(in, le(loc.data() + 8, 8), 56);
    if (le(z.data(), 4) != kEocd64Sig) bad("zip64 end-of-directory record missing");
    d = Directory{le(z.data() + 32, 8), le(z.data() + 48, 8), le(z.data() + 40, 8)};
  }
  if (d.offset > size || d.size > size - d.offset) bad("central directory lies past the end");
  if (d.entries > d.size / 46)
    bad(fmt::format("{} entries cannot fit in a {}-byte directory", d.entries, d.size));
  return d;
}

}  // namespace

void check_zip_bounds(const caffe2::serialize::ReadAdapterInterface& in) {
  const Directory d = find_directory(in);
  const auto cd = read_exact(in, d.offset, d.size);
  uint64_t pos = 0, compressed_total = 0;
  for (uint64_t i = 0; i < d.entries; ++i) {
    if (cd.size() - pos < 46 || le(&cd[pos], 4) != kCentralSig)
      bad(fmt::format("directory entry {} is damaged", i));
    const uint8_t* h = &cd[pos];
    const uint64_t method = le(h + 10, 2);
    uint64_t comp = le(h + 20, 4), uncomp = le(h + 24, 4);
    const uint64_t name_len = le(h + 28, 2), extra_len = le(h + 30, 2), comment_len = le(h + 32, 2);
    if (cd.size() - pos - 46 < name_len + extra_len + comment_len)
      bad(fmt::format("directory entry {} overruns", i));
    // zip64 extra field (id 1): the saturated 32-bit sizes follow in order uncompressed, compressed.
    const uint8_t* x = h + 46 + name_len;
    for (uint64_t xp = 0; xp + 4 <= extra_len;) {
      const uint64_t id = le(x + xp, 2), len = le(x + xp + 2, 2);
      if (xp + 4 + len > extra_len) break;
      if (id == 1) {
        uint64_t f = xp + 4;
        if (uncomp == 0xFFFFFFFF && f + 8 <= xp + 4 + len) uncomp = le(x + f, 8), f += 8;
        if (comp == 0xFFFFFFFF && f + 8 <= xp + 4 + len) comp = le(x + f, 8);
      }
      xp += 4 + len;
    }
    const std::string name(reinterpret_cast<const char*>(h + 46), std::min<uint64_t>(name_len, 200));
    if (method == 0 && comp != uncomp)
      bad(fmt::format("stored record '{}' has sizes {} and {}", name, comp, uncomp));
    if (method == 8 && uncomp > comp * kMaxDeflateRatio + 1024)
      bad(fmt::format("record '{}' claims {} bytes from {} compressed", name, uncomp, comp));
    if (method != 0 && method != 8) bad(fmt::format("record '{}' uses compression method {}", name, method));
    if (comp > in.size()) bad(fmt::format("record '{}' is larger than the file", name));
    compressed_total += comp;
    if (compressed_total > in.size()) bad("records overlap (their sizes add up to more than the file)");
    pos += 46 + name_len + extra_len + comment_len;
  }
}

}  // namespace rla::io::detail
