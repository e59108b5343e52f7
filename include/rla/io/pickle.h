#pragma once
// The subset of Python's pickle format that torch.save uses (protocol 2), read and written
// without Python. Reading never runs code: GLOBALs are checked against a fixed whitelist of
// PyTorch reconstructors (torch._utils._rebuild_tensor_v2, collections.OrderedDict, the
// torch.*Storage types, ...) and everything else is refused with a message naming it.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rla::io {

class PyDict;

/// A Python value as pickled by torch.save. Containers are references, as in Python: copying a
/// PyValue that holds a list, tuple or dict copies the reference, not the elements.
class PyValue {
 public:
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kBytes,
    kTuple,
    kList,
    kDict,
    kTensor,
    kGlobal,   ///< reader-internal: a whitelisted reconstructor name ("torch._utils._rebuild_tensor_v2")
    kStorage,  ///< reader-internal: the bytes of one storage record and its dtype
  };

  PyValue() = default;  ///< None
  static PyValue boolean(bool v);
  static PyValue integer(int64_t v);
  static PyValue floating(double v);
  static PyValue string(std::string v);
  static PyValue bytes(std::string v);
  static PyValue tuple(std::vector<PyValue> items);
  static PyValue list(std::vector<PyValue> items);
  /// An empty dict; `ordered` marks a collections.OrderedDict (written back as one).
  static PyValue dict(bool ordered = false);
  static PyValue tensor(at::Tensor t);
  static PyValue global(std::string qualified_name);
  /// `bytes`: a 1-D uint8 tensor owning the record's bytes; `dtype`: the storage's element type.
  static PyValue storage(at::Tensor bytes, at::ScalarType dtype);

  Kind kind() const { return kind_; }
  /// Python's name for the kind: "int", "str", "OrderedDict", "Tensor", ...
  std::string type_name() const;
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_tensor() const { return kind_ == Kind::kTensor; }
  bool is_sequence() const { return kind_ == Kind::kTuple || kind_ == Kind::kList; }

  // Accessors throw std::runtime_error naming the expected and the actual kind.
  bool to_bool() const;
  int64_t to_int() const;
  double to_double() const;              ///< float, or int widened
  const std::string& to_string() const;  ///< str, bytes or global name
  const at::Tensor& to_tensor() const;   ///< tensor, or the bytes of a storage
  at::ScalarType storage_dtype() const;
  const std::vector<PyValue>& items() const;  ///< tuple or list
  std::vector<PyValue>& mutable_items();
  const PyDict& to_dict() const;
  PyDict& mutable_dict();

  /// A short Python-like rendering for messages, cut at about `max_len` characters.
  std::string repr(size_t max_len = 60) const;
  /// Identity of a tuple/list/dict payload (shared between copies), null for scalars.
  const void* container_id() const;

 private:
  Kind kind_ = Kind::kNone;
  int64_t int_ = 0;  ///< bool, int, or the storage dtype
  double float_ = 0.0;
  std::shared_ptr<std::string> str_;
  std::shared_ptr<std::vector<PyValue>> seq_;
  std::shared_ptr<PyDict> dict_;
  at::Tensor tensor_;
};

/// A Python dict or OrderedDict: insertion-ordered, keys hashable scalars (None, bool, int,
/// float, str, bytes) or tuples of them.
class PyDict {
 public:
  explicit PyDict(bool ordered = false) : ordered_(ordered) {}
  bool ordered() const { return ordered_; }
  size_t size() const { return entries_.size(); }
  /// Inserts or, for an existing key, replaces the value in place (Python semantics).
  void set(const PyValue& key, PyValue value);
  const PyValue* find(const PyValue& key) const;
  const PyValue* find(const std::string& key) const;
  const std::vector<std::pair<PyValue, PyValue>>& entries() const { return entries_; }
  /// Drops every entry (the reader uses this to break reference cycles of rejected input).
  void clear();

 private:
  bool ordered_;
  std::vector<std::pair<PyValue, PyValue>> entries_;
  std::unordered_map<std::string, size_t> index_;
};

/// Called by the reader for each persistent id ('storage', <dtype>Storage, key, location, numel):
/// returns a PyValue::storage with at least numel elements, or throws.
using StorageLoader = std::function<PyValue(const std::string& key, at::ScalarType dtype, int64_t numel,
                                            const std::string& location)>;

struct UnpickleLimits {
  size_t max_depth = 200;  ///< nesting of containers in the result
};

/// Interprets `size` bytes of pickle (protocols 2–5, binary opcodes) into a value. Refuses any
/// GLOBAL outside the whitelist, any opcode that would construct arbitrary objects, reference
/// cycles, and malformed input, always with std::runtime_error naming what and where (offset).
PyValue unpickle(const void* data, size_t size, const StorageLoader& loader,
                 const UnpickleLimits& limits = {});

/// One storage referenced by a pickle written by `pickle()`: record "data/<key>".
struct StorageRecord {
  std::string key;
  at::Tensor owner;  ///< a CPU tensor keeping the bytes alive
  const void* data = nullptr;
  size_t nbytes = 0;
};

/// Writes `value` as a protocol-2 pickle the way torch.save does: tensors become
/// torch._utils._rebuild_tensor_v2 calls on persistent storages; tensors sharing a storage
/// share one record. Only None, bool, int, float, str, tuple, list, dict/OrderedDict, tensor.
std::string pickle(const PyValue& value, std::vector<StorageRecord>& storages);

/// The torch.<Name>Storage class name for a dtype ("FloatStorage"); throws if none.
std::string storage_type_name(at::ScalarType dtype);

}  // namespace rla::io
