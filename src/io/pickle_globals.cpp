// The reconstructor whitelist of the checkpoint reader: the only Python names a file may use,
// each mapped to a plain C++ function of its arguments. Mirrors (and is narrower than)
// torch._weights_only_unpickler._get_allowed_globals.
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <array>
#include <stdexcept>
#include <unordered_map>

#include "pickle_globals.h"

namespace rla::io::detail {

namespace {

constexpr const char* kRebuildV2 = "torch._utils._rebuild_tensor_v2";
constexpr const char* kRebuildV1 = "torch._utils._rebuild_tensor";
constexpr const char* kRebuildParam = "torch._utils._rebuild_parameter";
constexpr const char* kRebuildParamState = "torch._utils._rebuild_parameter_with_state";
constexpr const char* kRebuildFromType = "torch._tensor._rebuild_from_type_v2";

const std::unordered_map<std::string, at::ScalarType>& storage_classes() {
  static const std::unordered_map<std::string, at::ScalarType> table = {
      {"torch.FloatStorage", at::kFloat},
      {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},
      {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},
      {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool},
      {"torch.ComplexFloatStorage", at::kComplexFloat},
      {"torch.ComplexDoubleStorage", at::kComplexDouble},
      {"torch.UntypedStorage", at::kByte},
  };
  return table;
}

bool is_callable(const std::string& name) {
  static const std::array<const char*, 9> callables = {
      "collections.OrderedDict", kRebuildV2,   kRebuildV1,     kRebuildParam,   kRebuildParamState,
      kRebuildFromType,          "torch.Size", "torch.device", "_codecs.encode"};
  for (const char* c : callables)
    if (name == c) return true;
  return false;
}

void expect_args(const std::string& fn, const std::vector<PyValue>& args, size_t lo, size_t hi) {
  if (args.size() < lo || args.size() > hi)
    throw std::runtime_error(fmt::format("{} called with {} arguments, expected {}{}", fn, args.size(), lo,
                                         hi != lo ? fmt::format(" to {}", hi) : ""));
}

std::vector<int64_t> int_tuple(const PyValue& v, const char* what) {
  if (!v.is_sequence())
    throw std::runtime_error(fmt::format("tensor {} is a {}, not a tuple", what, v.type_name()));
  const auto& items = v.items();
  if (items.size() > 64)
    throw std::runtime_error(fmt::format("tensor {} has {} dimensions", what, items.size()));
  std::vector<int64_t> out;
  out.reserve(items.size());
  for (const auto& it : items) {
    const int64_t x = it.to_int();
    if (x < 0 || x > (int64_t{1} << 48))
      throw std::runtime_error(fmt::format("tensor {} holds {}, outside [0, 2^48]", what, x));
    out.push_back(x);
  }
  return out;
}

// Python's str.encode('latin1') of a UTF-8 string: each code point must be < 256.
std::string latin1_bytes(const std::string& utf8) {
  std::string out;
  for (size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if ((c & 0xE0) == 0xC0 && i + 1 < utf8.size() && c <= 0xC3) {
      out.push_back(static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(utf8[++i]) & 0x3F)));
    } else {
      throw std::runtime_error("_codecs.encode: string is not latin-1");
    }
  }
  return out;
}

PyValue make_ordered_dict(const std::vector<PyValue>& args) {
  expect_args("collections.OrderedDict", args, 0, 1);
  auto d = PyValue::dict(/*ordered=*/true);
  if (args.size() == 1) {
    for (const auto& pair : args[0].items()) {
      const auto& kv = pair.items();
      if (kv.size() != 2) throw std::runtime_error("OrderedDict item is not a (key, value) pair");
      d.mutable_dict().set(kv[0], kv[1]);
    }
  }
  return d;
}

}  // namespace

bool is_allowed_global(const std::string& name) {
  return is_callable(name) || storage_classes().count(name) > 0 || name == "torch.Tensor" ||
         name == "torch.nn.parameter.Parameter";
}

at::ScalarType storage_class_dtype(const std::string& name) {
  auto it = storage_classes().find(name);
  if (it == storage_classes().end())
    throw std::runtime_error(fmt::format("'{}' is not a storage class", name));
  return it->second;
}

PyValue rebuild_tensor(const PyValue& storage, const PyValue& offset_v, const PyValue& size_v,
                       const PyValue& stride_v) {
  if (storage.kind() != PyValue::Kind::kStorage)
    throw std::runtime_error(fmt::format("tensor rebuilt from a {}, not a storage", storage.type_name()));
  const auto dtype = storage.storage_dtype();
  const auto& bytes = storage.to_tensor();
  const int64_t offset = offset_v.to_int();
  const auto size = int_tuple(size_v, "size");
  const auto stride = int_tuple(stride_v, "stride");
  if (size.size() != stride.size())
    throw std::runtime_error(
        fmt::format("tensor size has {} dims but stride {}", size.size(), stride.size()));
  if (offset < 0 || offset > (int64_t{1} << 48))
    throw std::runtime_error(fmt::format("storage offset {}", offset));
  // Last element reached by the view (in elements); 128-bit so that no product overflows.
  __int128 last = offset;
  bool empty = false;
  for (size_t i = 0; i < size.size(); ++i) {
    if (size[i] == 0)
      empty = true;
    else
      last += static_cast<__int128>(size[i] - 1) * stride[i];
  }
  const __int128 itemsize = static_cast<int64_t>(c10::elementSize(dtype));
  const __int128 available = bytes.numel();
  if (!empty && (last + 1) * itemsize > available)
    throw std::runtime_error(
        fmt::format("tensor view (offset {}, size [{}], stride [{}]) reaches past its storage "
                    "of {} bytes",
                    offset, fmt::join(size, ","), fmt::join(stride, ","), bytes.numel()));
  if (empty) return PyValue::tensor(at::empty(size, at::TensorOptions().dtype(dtype)));
  auto t = at::empty({0}, at::TensorOptions().dtype(dtype));
  t.set_(bytes.storage(), offset, size, stride);
  return PyValue::tensor(std::move(t));
}

PyValue call_global(const std::string& fn, const PyValue& args_v) {
  if (args_v.kind() != PyValue::Kind::kTuple)
    throw std::runtime_error(
        fmt::format("{} called with a {} instead of an argument tuple", fn, args_v.type_name()));
  const auto& args = args_v.items();
  if (fn == kRebuildV2 || fn == kRebuildV1) {
    // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
    expect_args(fn, args, fn == kRebuildV2 ? 6 : 4, fn == kRebuildV2 ? 7 : 4);
    return rebuild_tensor(args[0], args[1], args[2], args[3]);
  }
  if (fn == kRebuildParam || fn == kRebuildParamState) {
    // (data, requires_grad, backward_hooks[, state]): a Parameter is its data here.
    expect_args(fn, args, fn == kRebuildParam ? 3 : 4, fn == kRebuildParam ? 3 : 4);
    if (!args[0].is_tensor()) throw std::runtime_error(fn + ": data is not a tensor");
    return args[0];
  }
  if (fn == kRebuildFromType) {
    // (func, type, args, state): only for plain Tensor / Parameter, and func a rebuild function.
    expect_args(fn, args, 4, 4);
    const auto& inner = args[0].to_string();
    const auto& type = args[1].to_string();
    if (args[0].kind() != PyValue::Kind::kGlobal || inner == kRebuildFromType || !is_callable(inner))
      throw std::runtime_error(fn + ": unsupported inner function " + args[0].repr());
    if (type != "torch.Tensor" && type != "torch.nn.parameter.Parameter")
      throw std::runtime_error(fn + ": tensor subclass '" + type + "' is not supported");
    return call_global(inner, args[2]);
  }
  if (fn == "collections.OrderedDict") return make_ordered_dict(args);
  if (fn == "torch.Size") {
    expect_args(fn, args, 1, 1);
    int_tuple(args[0], "torch.Size");
    return PyValue::tuple(args[0].items());
  }
  if (fn == "torch.device") {
    expect_args(fn, args, 1, 2);
    std::string dev = args[0].to_string();
    if (args.size() == 2 && !args[1].is_none()) dev += ":" + std::to_string(args[1].to_int());
    return PyValue::string(dev);
  }
  if (fn == "_codecs.encode") {
    expect_args(fn, args, 2, 2);
    const auto& enc = args[1].to_string();
    if (enc != "latin1" && enc != "latin-1")
      throw std::runtime_error("_codecs.encode: unsupported encoding " + enc);
    return PyValue::bytes(latin1_bytes(args[0].to_string()));
  }
  throw std::runtime_error(
      fmt::format("'{}' may not be called (only PyTorch tensor reconstructors are)", fn));
}

}  // namespace rla::io::detail
