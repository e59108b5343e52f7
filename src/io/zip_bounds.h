#pragma once
// Internal to src/io: byte sources for PyTorchStreamReader that never read out of bounds, and a
// check of a zip archive's central directory that bounds what extracting its records can cost.
#include <caffe2/serialize/read_adapter_interface.h>

#include <cstdint>
#include <memory>
#include <string>

namespace rla::io::detail {

/// Reads from a caller-owned buffer; reads past the end return fewer bytes.
class MemoryAdapter final : public caffe2::serialize::ReadAdapterInterface {
 public:
  MemoryAdapter(const void* data, size_t size) : data_(static_cast<const char*>(data)), size_(size) {}
  size_t size() const override { return size_; }
  size_t read(uint64_t pos, void* buf, size_t n, const char* what = "") const override;

 private:
  const char* data_;
  size_t size_;
};

/// Reads a file with pread(); throws std::runtime_error naming the path if it cannot be opened.
class FileAdapter final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit FileAdapter(const std::string& path);
  ~FileAdapter() override;
  size_t size() const override { return size_; }
  size_t read(uint64_t pos, void* buf, size_t n, const char* what = "") const override;

 private:
  int fd_ = -1;
  size_t size_ = 0;
};

/// Walks the zip central directory (zip64 included) and throws unless every entry is stored
/// (sizes equal) or deflated with at most deflate's maximal ratio, and the entries' compressed
/// bytes add up to no more than the file: extracting all of them then costs at most ~1032x the
/// file size, so a crafted size field cannot make the reader allocate without bound.
void check_zip_bounds(const caffe2::serialize::ReadAdapterInterface& in);

}  // namespace rla::io::detail
