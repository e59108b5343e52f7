// io::unpickle: the driver of the pickle interpreter (unpickler.h) and the rules for the
// objects it may build: whitelisted globals, storages, BUILD, and the final acyclicity check.
#include "pickle_globals.h"
#include "unpickler.h"

namespace rla::io {
namespace detail {

Unpickler::~Unpickler() {
  for (auto& c : containers_) {
    if (keep_.count(c.container_id())) continue;
    if (c.is_dict())
      c.mutable_dict().clear();
    else
      c.mutable_items().clear();
  }
}

PyValue Unpickler::run() {
  while (true) {
    if (pos_ >= size_) fail("pickle ends without STOP");
    op_pos_ = pos_;
    const uint8_t op = p_[pos_++];
    if (op == '.') break;
    step(op);
  }
  PyValue result = pop();
  std::unordered_map<const void*, int> state;  // 1: on the DFS path, 2: done
  check(result, 0, state);
  for (const auto& kv : state) keep_.insert(kv.first);
  return result;
}

PyValue Unpickler::decode_long(uint64_t n) {
  if (n > 8) fail(fmt::format("integer of {} bytes does not fit in 64 bits", n));
  const uint8_t* b = take(n);
  uint64_t v = 0;
  for (uint64_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
  if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
  return PyValue::integer(static_cast<int64_t>(v));
}

PyValue Unpickler::text_int(bool long_form) {
  std::string s = read_line();
  if (long_form && !s.empty() && s.back() == 'L') s.pop_back();
  if (!long_form && s == "00") return PyValue::boolean(false);
  if (!long_form && s == "01") return PyValue::boolean(true);
  try {
    size_t used = 0;
    const long long v = std::stoll(s, &used);
    if (used != s.size()) throw std::invalid_argument(s);
    return PyValue::integer(v);
  } catch (const std::exception&) {
    fail("bad integer literal '" + s.substr(0, 24) + "'");
  }
}

void Unpickler::set_items(std::vector<PyValue> items) {
  if (items.size() % 2) fail("odd number of items for a dict");
  auto& d = top_of(PyValue::Kind::kDict, "SETITEMS").mutable_dict();
  for (size_t i = 0; i < items.size(); i += 2) d.set(items[i], std::move(items[i + 1]));
}

void Unpickler::global(const std::string& module, const std::string& name) {
  const std::string q = module + "." + name;
  if (!detail::is_allowed_global(q))
    fail(
        fmt::format("refusing global '{}': not a PyTorch tensor reconstructor; loading this file "
                    "could run code",
                    q.substr(0, 200)));
  push(PyValue::global(q));
}

void Unpickler::persistent_load() {
  const PyValue pid = pop();
  if (pid.kind() != PyValue::Kind::kTuple || pid.items().size() != 5)
    fail("persistent id is not a ('storage', type, key, location, numel) tuple: " + pid.repr());
  const auto& f = pid.items();
  if (!f[0].is_string() || f[0].to_string() != "storage" || f[1].kind() != PyValue::Kind::kGlobal)
    fail("persistent id is not a storage: " + pid.repr());
  const auto dtype = detail::storage_class_dtype(f[1].to_string());
  const std::string& key = f[2].to_string();
  const std::string& location = f[3].to_string();
  const int64_t numel = f[4].to_int();
  if (key.empty() || key.size() > 64 ||
      key.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz_") != std::string::npos)
    fail("bad storage key '" + key.substr(0, 64) + "'");
  if (numel < 0) fail(fmt::format("storage {} has {} elements", key, numel));
  auto it = storages_.find(key);
  if (it == storages_.end()) {
    it = storages_.emplace(key, loader_(key, dtype, numel, location)).first;
  }
  const at::Tensor& bytes = it->second.to_tensor();
  if (static_cast<__int128>(numel) * static_cast<int64_t>(c10::elementSize(dtype)) > bytes.numel())
    fail(fmt::format("storage {} declares {} elements but its record holds {} bytes", key, numel,
                     bytes.numel()));
  push(PyValue::storage(bytes, dtype));
}

void Unpickler::build() {
  const PyValue state = pop();
  const PyValue& inst = top();
  // OrderedDict state carries attributes such as _metadata; tensors may carry Python state.
  // Neither affects the values, so they are dropped after this sanity check.
  if (!inst.is_dict() && !inst.is_tensor()) fail("BUILD on a " + inst.type_name() + " is not allowed");
  if (!state.is_none() && !state.is_dict() && state.kind() != PyValue::Kind::kTuple)
    fail("BUILD with a " + state.type_name() + " state");
}

void Unpickler::check(const PyValue& v, size_t depth, std::unordered_map<const void*, int>& state) {
  if (depth > limits_.max_depth) fail(fmt::format("values nested deeper than {}", limits_.max_depth));
  if (v.kind() == PyValue::Kind::kGlobal || v.kind() == PyValue::Kind::kStorage)
    fail("result holds a bare " + v.type_name() + " " + v.repr());
  const void* id = v.container_id();
  if (!id) return;
  int& s = state[id];
  if (s == 1) fail("the pickle holds a reference cycle");
  if (s == 2) return;
  s = 1;
  if (v.is_dict()) {
    for (const auto& kv : v.to_dict().entries()) {
      check(kv.first, depth + 1, state);
      check(kv.second, depth + 1, state);
    }
  } else {
    for (const auto& item : v.items()) check(item, depth + 1, state);
  }
  state[id] = 2;
}

}  // namespace detail

PyValue unpickle(const void* data, size_t size, const StorageLoader& loader, const UnpickleLimits& limits) {
  detail::Unpickler u(data, size, loader, limits);
  return u.run();
}

}  // namespace rla::io
