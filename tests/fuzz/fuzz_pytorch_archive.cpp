// libFuzzer target for the checkpoint reader. Inputs starting with "PK" go through the whole
// reader (zip checks, PyTorchStreamReader, pickle); anything else straight into the pickle
// interpreter, whose storages are served as zero bytes (the zip CRC would otherwise reject most
// mutated pickles before the interpreter sees them). Any exception is a clean refusal; a crash,
// sanitizer report, leak, timeout or out-of-memory is a bug.
#include <ATen/ATen.h>

#include <cstdint>
#include <exception>

#include "rla/io/pytorch_archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    if (size >= 2 && data[0] == 'P' && data[1] == 'K') {
      rla::io::read_pytorch_buffer(data, size, "fuzz");
    } else {
      const rla::io::StorageLoader loader = [](const std::string&, at::ScalarType dtype, int64_t numel,
                                               const std::string&) {
        const int64_t bytes = numel * static_cast<int64_t>(c10::elementSize(dtype));
        if (numel < 0 || bytes > (1 << 20)) throw std::runtime_error("storage too large for the fuzzer");
        return rla::io::PyValue::storage(at::zeros({bytes}, at::kByte), dtype);
      };
      rla::io::unpickle(data, size, loader);
    }
  } catch (const std::exception&) {
  }
  return 0;
}
