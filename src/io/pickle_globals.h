#pragma once
// Internal to src/io: the whitelist of Python globals a checkpoint may name, and what calling
// each of them (pickle REDUCE) means here. Nothing outside this table is ever constructed.
#include <string>

#include "rla/io/pickle.h"

namespace rla::io::detail {

/// True for "module.name" values in the whitelist (reconstructors, storage types, marker types).
bool is_allowed_global(const std::string& qualified_name);

/// The element type of a whitelisted storage class ("torch.FloatStorage" -> kFloat); throws
/// for a name that is not a storage class.
at::ScalarType storage_class_dtype(const std::string& qualified_name);

/// Applies a whitelisted reconstructor to its argument tuple (pickle REDUCE). Throws for any
/// global that is not callable here, or for arguments of the wrong shape.
PyValue call_global(const std::string& qualified_name, const PyValue& args);

/// torch._utils._rebuild_tensor_v2's core: a view [size] with `stride` at `offset` elements into
/// `storage`, checked to lie inside the storage's bytes.
PyValue rebuild_tensor(const PyValue& storage, const PyValue& offset, const PyValue& size,
                       const PyValue& stride);

}  // namespace rla::io::detail
