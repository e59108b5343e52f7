#pragma once
// torch.save files without Python: the zip archive (LibTorch's PyTorchStreamReader/Writer) and
// its data.pkl (rla/io/pickle.h). Reading honours only a whitelist of PyTorch reconstructors
// and never runs code; writing produces files that Python's
// torch.load(path, weights_only=True) reads.
#include <string>

#include "rla/io/pickle.h"

namespace rla::io {

/// Reads a torch.save file (PyTorch >= 1.6 zip format): the pickled object with every tensor
/// on the CPU (whatever device it was saved from), tensors sharing a storage in the file
/// sharing it here. Throws std::runtime_error naming the file and the problem: a legacy
/// (pre-1.6) file, a TorchScript archive, a GLOBAL outside the whitelist, a damaged archive.
PyValue read_pytorch_file(const std::string& path);

/// The same, from a buffer (`name` is used in messages).
PyValue read_pytorch_buffer(const void* data, size_t size, const std::string& name = "<buffer>");

/// Writes `value` (None/bool/int/float/str/tuple/list/dict/OrderedDict/tensors, nested) as
/// torch.save(value, path) would. Atomic: written to `path + ".tmp"`, then renamed over `path`.
void write_pytorch_file(const std::string& path, const PyValue& value);

/// The archive bytes write_pytorch_file would write.
std::string write_pytorch_buffer(const PyValue& value);

}  // namespace rla::io
