// Writes protocol-2 pickles the way Python's torch.save does, using only opcodes that
// torch.load(weights_only=True) accepts (BINFLOAT needs PyTorch >= 2.0 there).
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include "rla/io/pickle.h"

namespace rla::io {

namespace {

class Pickler {
 public:
  explicit Pickler(std::vector<StorageRecord>& storages) : storages_(storages) {}

  std::string run(const PyValue& v) {
    out_ += "\x80\x02";
    write(v, 0);
    out_ += '.';
    return std::move(out_);
  }

 private:
  void op(char c) { out_.push_back(c); }
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
  void global(const char* module, const std::string& name) { out_ += fmt::format("c{}\n{}\n", module, name); }
  void str(const std::string& s) {
    op('X');
    le(s.size(), 4);
    out_ += s;
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');
      le(static_cast<uint64_t>(v), 1);
    } else if (v >= 0 && v < 65536) {
      op('M');
      le(static_cast<uint64_t>(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      le(static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
    } else {
      op('\x8a');  // LONG1, 8 bytes two's complement (Python accepts the non-minimal form)
      le(8, 1);
      le(static_cast<uint64_t>(v), 8);
    }
  }
  void int_tuple(c10::IntArrayRef values) {
    op('(');
    for (auto v : values) integer(v);
    op('t');
  }
  void empty_ordered_dict() {
    global("collections", "OrderedDict");
    op(')');
    op('R');
  }

  void tensor(at::Tensor t) {
    TORCH_CHECK(t.defined(), "pickle: cannot write an undefined tensor");
    TORCH_CHECK(t.layout() == at::kStrided && !t.is_quantized(), "pickle: only dense tensors can be written");
    if (!t.device().is_cpu()) t = t.cpu();
    const auto& storage = t.storage();
    const void* id = storage.unsafeGetStorageImpl();
    auto it = keys_.find(id);
    if (it == keys_.end()) {
      StorageRecord rec;
      rec.key = std::to_string(storages_.size());
      rec.owner = t;
      rec.data = storage.data();
      rec.nbytes = storage.nbytes();
      storages_.push_back(rec);
      it = keys_.emplace(id, storages_.size() - 1).first;
    }
    const auto& rec = storages_[it->second];
    const int64_t itemsize = static_cast<int64_t>(t.element_size());
    global("torch._utils", "_rebuild_tensor_v2");
    op('(');
    // persistent id: ('storage', torch.<T>Storage, key, 'cpu', numel)
    op('(');
    str("storage");
    global("torch", storage_type_name(t.scalar_type()));
    str(rec.key);
    str("cpu");
    integer(static_cast<int64_t>(rec.nbytes) / itemsize);
    op('t');
    op('Q');
    integer(t.storage_offset());
    int_tuple(t.sizes());
    int_tuple(t.strides());
    op('\x89');  // requires_grad=False
    empty_ordered_dict();
    op('t');
    op('R');
  }

  void write(const PyValue& v, size_t depth) {
    TORCH_CHECK(depth < 200, "pickle: value nested too deeply");
    switch (v.kind()) {
      case PyValue::Kind::kNone:
        op('N');
        return;
      case PyValue::Kind::kBool:
        op(v.to_bool() ? '\x88' : '\x89');
        return;
      case PyValue::Kind::kInt:
        integer(v.to_int());
        return;
      case PyValue::Kind::kFloat: {
        const double d = v.to_double();
        uint64_t bits = 0;
        std::memcpy(&bits, &d, sizeof(d));
        op('G');
        for (int i = 7; i >= 0; --i) out_.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
        return;
      }
      case PyValue::Kind::kString:
        str(v.to_string());
        return;
      case PyValue::Kind::kTuple:
        op('(');
        for (const auto& item : v.items()) write(item, depth + 1);
        op('t');
        return;
      case PyValue::Kind::kList:
        op(']');
        if (!v.items().empty()) {
          op('(');
          for (const auto& item : v.items()) write(item, depth + 1);
          op('e');
        }
        return;
      case PyValue::Kind::kDict: {
        const auto& d = v.to_dict();
        if (d.ordered())
          empty_ordered_dict();
        else
          op('}');
        if (d.size() > 0) {
          op('(');
          for (const auto& kv : d.entries()) {
            write(kv.first, depth + 1);
            write(kv.second, depth + 1);
          }
          op('u');
        }
        return;
      }
      case PyValue::Kind::kTensor:
        tensor(v.to_tensor());
        return;
      default:
        TORCH_CHECK(false, "pickle: cannot write a ", v.type_name(),
                    " (bytes, globals and storages are not supported)");
    }
  }

  std::string out_;
  std::vector<StorageRecord>& storages_;
  std::unordered_map<const void*, size_t> keys_;
};

}  // namespace

std::string storage_type_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat:
      return "FloatStorage";
    case at::kDouble:
      return "DoubleStorage";
    case at::kHalf:
      return "HalfStorage";
    case at::kBFloat16:
      return "BFloat16Storage";
    case at::kLong:
      return "LongStorage";
    case at::kInt:
      return "IntStorage";
    case at::kShort:
      return "ShortStorage";
    case at::kChar:
      return "CharStorage";
    case at::kByte:
      return "ByteStorage";
    case at::kBool:
      return "BoolStorage";
    case at::kComplexFloat:
      return "ComplexFloatStorage";
    case at::kComplexDouble:
      return "ComplexDoubleStorage";
    default:
      throw std::runtime_error(fmt::format("no PyTorch storage class for dtype {}", c10::toString(dtype)));
  }
}

std::string pickle(const PyValue& value, std::vector<StorageRecord>& storages) {
  return Pickler(storages).run(value);
}

}  // namespace rla::io
