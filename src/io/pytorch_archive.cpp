// torch.save archives: PyTorchStreamReader/Writer for the zip container, our pickle code for
// data.pkl, and the format checks that turn unsupported files into clear messages.
#include "rla/io/pytorch_archive.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>
#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "rla/util/file.h"
#include "zip_bounds.h"

namespace rla::io {

namespace {

using caffe2::serialize::PyTorchStreamReader;
using caffe2::serialize::ReadAdapterInterface;

// Pre-1.6 torch.save files start with a pickled magic number (0x1950a86a20f9469cfc6c, LONG1).
constexpr uint8_t kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                    0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

void check_magic(const ReadAdapterInterface& in) {
  uint8_t head[sizeof(kLegacyMagic)] = {};
  const size_t n = in.read(0, head, sizeof(head));
  if (n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) return;
  if (n == sizeof(head) && std::memcmp(head, kLegacyMagic, sizeof(head)) == 0)
    throw std::runtime_error(
        "legacy (pre-1.6, non-zip) torch.save format; re-save it in Python with "
        "torch.save(torch.load(path), path, _use_new_zipfile_serialization=True)");
  if (n >= 1 && head[0] == 0x80)
    throw std::runtime_error(
        "a bare pickle, not a torch.save zip archive; re-save it in Python with "
        "torch.save(obj, path, _use_new_zipfile_serialization=True)");
  throw std::runtime_error("not a PyTorch checkpoint (no zip signature at the start)");
}

// The bytes of record `name` as a 1-D uint8 tensor that owns them.
at::Tensor record_bytes(PyTorchStreamReader& reader, const std::string& name) {
  if (!reader.hasRecord(name)) throw std::runtime_error(fmt::format("archive has no record '{}'", name));
  auto [ptr, size] = reader.getRecord(name);
  c10::Storage storage(c10::Storage::use_byte_size_t(), size, std::move(ptr), /*allocator=*/nullptr,
                       /*resizable=*/false);
  auto t = at::empty({0}, at::TensorOptions().dtype(at::kByte));
  t.set_(storage, 0, {static_cast<int64_t>(size)}, {1});
  return t;
}

PyValue read_archive(const std::shared_ptr<ReadAdapterInterface>& in) {
  check_magic(*in);
  detail::check_zip_bounds(*in);
  PyTorchStreamReader reader(in);
  if (reader.hasRecord("constants.pkl") || reader.hasRecord("code/__torch__.py") ||
      reader.hasRecord("bytecode.pkl"))
    throw std::runtime_error(
        "a TorchScript archive (torch.jit.save / torch::save), not a torch.save checkpoint; save the "
        "state_dict with torch.save(model.state_dict(), path)");
  if (!reader.hasRecord("data.pkl")) throw std::runtime_error("archive has no data.pkl");
  if (reader.hasRecord("byteorder")) {
    const auto order = record_bytes(reader, "byteorder");
    const std::string s(static_cast<const char*>(order.data_ptr()), order.numel());
    if (s != "little")
      throw std::runtime_error("archive byte order is '" + s.substr(0, 16) + "', only little is supported");
  }
  const at::Tensor pickle_bytes = record_bytes(reader, "data.pkl");
  StorageLoader loader = [&reader](const std::string& key, at::ScalarType dtype, int64_t numel,
                                   const std::string& /*location: always loaded to the CPU*/) {
    at::Tensor bytes = record_bytes(reader, "data/" + key);
    const auto need = static_cast<__int128>(numel) * static_cast<int64_t>(c10::elementSize(dtype));
    if (need != bytes.numel())
      throw std::runtime_error(fmt::format("storage data/{} holds {} bytes, its {} elements of {} need {}",
                                           key, bytes.numel(), numel, c10::toString(dtype),
                                           static_cast<int64_t>(need)));
    return PyValue::storage(bytes, dtype);
  };
  return unpickle(pickle_bytes.data_ptr(), static_cast<size_t>(pickle_bytes.numel()), loader);
}

PyValue read_with_context(const std::string& name, const std::shared_ptr<ReadAdapterInterface>& in) {
  try {
    return read_archive(in);
  } catch (const c10::Error& e) {
    throw std::runtime_error(fmt::format("{}: {}", name, e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: {}", name, e.what()));
  }
}

}  // namespace

PyValue read_pytorch_file(const std::string& path) {
  std::shared_ptr<ReadAdapterInterface> in;
  try {
    in = std::make_shared<detail::FileAdapter>(path);
  } catch (const std::exception& e) {
    throw std::runtime_error(e.what());
  }
  return read_with_context(path, in);
}

PyValue read_pytorch_buffer(const void* data, size_t size, const std::string& name) {
  return read_with_context(name, std::make_shared<detail::MemoryAdapter>(data, size));
}

namespace {

template <typename Sink>
void write_archive(const PyValue& value, Sink&& sink) {
  std::vector<StorageRecord> storages;
  const std::string data_pkl = pickle(value, storages);
  // The sink never reports a short write to miniz, so the writer's destructor cannot throw;
  // callers check their own stream state afterwards.
  caffe2::serialize::PyTorchStreamWriter writer([&sink](const void* buf, size_t n) -> size_t {
    sink(static_cast<const char*>(buf), n);
    return n;
  });
  writer.writeRecord("data.pkl", data_pkl.data(), data_pkl.size());
  writer.writeRecord("byteorder", "little", 6);
  for (const auto& s : storages) writer.writeRecord("data/" + s.key, s.data, s.nbytes);
  writer.writeEndOfFile();
}

}  // namespace

std::string write_pytorch_buffer(const PyValue& value) {
  std::string out;
  write_archive(value, [&out](const char* p, size_t n) { out.append(p, n); });
  return out;
}

void write_pytorch_file(const std::string& path, const PyValue& value) {
  util::write_file_atomic(path, [&value](std::ostream& f) {
    write_archive(value, [&f](const char* p, size_t n) { f.write(p, static_cast<std::streamsize>(n)); });
  });
}

}  // namespace rla::io
