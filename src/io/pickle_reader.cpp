// A pickle interpreter for the subset torch.save writes. It is a plain state machine over the
// bytes: every opcode consumes at least one byte, every length is checked against what is left,
// and objects are built only from the whitelist in pickle_globals.cpp.
#include <fmt/format.h>

#include <cstring>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "pickle_globals.h"
#include "rla/io/pickle.h"

namespace rla::io {

namespace {

class Unpickler {
 public:
  Unpickler(const void* data, size_t size, const StorageLoader& loader, const UnpickleLimits& limits)
      : p_(static_cast<const uint8_t*>(data)), size_(size), loader_(loader), limits_(limits) {}

  // Containers can reference each other in cycles (a malicious file can build a list that holds
  // itself); shared_ptr would leak them. Every container created is cleared unless it belongs to
  // the (checked acyclic) result.
  ~Unpickler() {
    for (auto& c : containers_) {
      if (keep_.count(c.container_id())) continue;
      if (c.is_dict())
        c.mutable_dict().clear();
      else
        c.mutable_items().clear();
    }
  }

  PyValue run() {
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

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(fmt::format("pickle: {} (at byte {})", what, op_pos_));
  }

  const uint8_t* take(uint64_t n) {
    if (n > size_ - pos_) fail(fmt::format("needs {} more bytes, {} left", n, size_ - pos_));
    const uint8_t* out = p_ + pos_;
    pos_ += n;
    return out;
  }
  uint64_t read_le(int n) {
    const uint8_t* b = take(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | b[i];
    return v;
  }
  std::string read_str(uint64_t n) {
    const uint8_t* b = take(n);
    return std::string(reinterpret_cast<const char*>(b), n);
  }
  std::string read_line() {
    const void* nl = std::memchr(p_ + pos_, '\n', size_ - pos_);
    if (!nl) fail("unterminated text argument");
    const size_t n = static_cast<const uint8_t*>(nl) - (p_ + pos_);
    std::string s = read_str(n);
    ++pos_;
    return s;
  }
  uint32_t read_decimal_line() {
    const auto s = read_line();
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
      fail("bad memo index '" + s.substr(0, 20) + "'");
    return static_cast<uint32_t>(std::stoul(s));
  }

  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(PyValue v) { stack_.push_back(std::move(v)); }
  PyValue pop() {
    if (stack_.size() <= floor()) fail("stack underflow");
    PyValue v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  PyValue& top() {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<PyValue> pop_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyValue> items(std::make_move_iterator(stack_.begin() + m),
                               std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  PyValue track(PyValue v) {
    if (v.container_id()) containers_.push_back(v);
    return v;
  }
  PyValue& top_of(PyValue::Kind kind, const char* op) {
    PyValue& t = top();
    if (t.kind() != kind) fail(fmt::format("{} on a {}", op, t.type_name()));
    return t;
  }

  PyValue decode_long(uint64_t n) {
    if (n > 8) fail(fmt::format("integer of {} bytes does not fit in 64 bits", n));
    const uint8_t* b = take(n);
    uint64_t v = 0;
    for (uint64_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
    if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return PyValue::integer(static_cast<int64_t>(v));
  }

  PyValue text_int(bool long_form) {
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

  void set_items(std::vector<PyValue> items) {
    if (items.size() % 2) fail("odd number of items for a dict");
    auto& d = top_of(PyValue::Kind::kDict, "SETITEMS").mutable_dict();
    for (size_t i = 0; i < items.size(); i += 2) d.set(items[i], std::move(items[i + 1]));
  }

  void global(const std::string& module, const std::string& name) {
    const std::string q = module + "." + name;
    if (!detail::is_allowed_global(q))
      fail(
          fmt::format("refusing global '{}': not a PyTorch tensor reconstructor; loading this file "
                      "could run code",
                      q.substr(0, 200)));
    push(PyValue::global(q));
  }

  void persistent_load() {
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

  void build() {
    const PyValue state = pop();
    const PyValue& inst = top();
    // OrderedDict state carries attributes such as _metadata; tensors may carry Python state.
    // Neither affects the values, so they are dropped after this sanity check.
    if (!inst.is_dict() && !inst.is_tensor()) fail("BUILD on a " + inst.type_name() + " is not allowed");
    if (!state.is_none() && !state.is_dict() && state.kind() != PyValue::Kind::kTuple)
      fail("BUILD with a " + state.type_name() + " state");
  }

  void memo_put(uint32_t idx) { memo_[idx] = top(); }
  void memo_get(uint32_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) fail(fmt::format("memo entry {} is not defined", idx));
    push(it->second);
  }

  void step(uint8_t op);

  // Depth-first walk of the result: no cycles, bounded depth, no reader-internal values.
  void check(const PyValue& v, size_t depth, std::unordered_map<const void*, int>& state) {
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

  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  const StorageLoader& loader_;
  UnpickleLimits limits_;
  std::vector<PyValue> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, PyValue> memo_;
  std::unordered_map<std::string, PyValue> storages_;
  std::vector<PyValue> containers_;
  std::unordered_set<const void*> keep_;
};

void Unpickler::step(uint8_t op) {
  switch (op) {
    case 0x80: {  // PROTO
      const auto v = read_le(1);
      if (v > 5) fail(fmt::format("unsupported pickle protocol {}", v));
      break;
    }
    case 0x95:  // FRAME: a length hint only
      take(8);
      break;
    case '(':  // MARK
      marks_.push_back(stack_.size());
      break;
    case '0':  // POP
      if (stack_.size() > floor())
        pop();
      else
        pop_mark();
      break;
    case '1':  // POP_MARK
      pop_mark();
      break;
    case '2':  // DUP
      push(top());
      break;
    case 'N':
      push(PyValue());
      break;
    case 0x88:
      push(PyValue::boolean(true));
      break;
    case 0x89:
      push(PyValue::boolean(false));
      break;
    case 'J':  // BININT
      push(PyValue::integer(static_cast<int32_t>(read_le(4))));
      break;
    case 'K':  // BININT1
      push(PyValue::integer(static_cast<int64_t>(read_le(1))));
      break;
    case 'M':  // BININT2
      push(PyValue::integer(static_cast<int64_t>(read_le(2))));
      break;
    case 0x8a:  // LONG1
      push(decode_long(read_le(1)));
      break;
    case 0x8b:  // LONG4
      push(decode_long(read_le(4)));
      break;
    case 'I':
      push(text_int(false));
      break;
    case 'L':
      push(text_int(true));
      break;
    case 'G': {  // BINFLOAT: big-endian IEEE double
      const uint8_t* b = take(8);
      uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];
      double d = 0;
      std::memcpy(&d, &bits, sizeof(d));
      push(PyValue::floating(d));
      break;
    }
    case 'X':  // BINUNICODE
      push(PyValue::string(read_str(read_le(4))));
      break;
    case 0x8c:  // SHORT_BINUNICODE
      push(PyValue::string(read_str(read_le(1))));
      break;
    case 0x8d:  // BINUNICODE8
      push(PyValue::string(read_str(read_le(8))));
      break;
    case 'T': {  // BINSTRING (Python 2 str)
      const auto n = static_cast<int32_t>(read_le(4));
      if (n < 0) fail("negative string length");
      push(PyValue::string(read_str(static_cast<uint64_t>(n))));
      break;
    }
    case 'U':  // SHORT_BINSTRING
      push(PyValue::string(read_str(read_le(1))));
      break;
    case 'B':  // BINBYTES
      push(PyValue::bytes(read_str(read_le(4))));
      break;
    case 'C':  // SHORT_BINBYTES
      push(PyValue::bytes(read_str(read_le(1))));
      break;
    case 0x8e:  // BINBYTES8
      push(PyValue::bytes(read_str(read_le(8))));
      break;
    case ')':
      push(track(PyValue::tuple({})));
      break;
    case 't':
      push(track(PyValue::tuple(pop_mark())));
      break;
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      const size_t n = op - 0x84;
      if (stack_.size() < floor() + n) fail("stack underflow");
      std::vector<PyValue> items(std::make_move_iterator(stack_.end() - n),
                                 std::make_move_iterator(stack_.end()));
      stack_.resize(stack_.size() - n);
      push(track(PyValue::tuple(std::move(items))));
      break;
    }
    case ']':
      push(track(PyValue::list({})));
      break;
    case 'l':
      push(track(PyValue::list(pop_mark())));
      break;
    case 'a': {  // APPEND
      PyValue v = pop();
      top_of(PyValue::Kind::kList, "APPEND").mutable_items().push_back(std::move(v));
      break;
    }
    case 'e': {  // APPENDS
      auto items = pop_mark();
      auto& l = top_of(PyValue::Kind::kList, "APPENDS").mutable_items();
      for (auto& v : items) l.push_back(std::move(v));
      break;
    }
    case '}':
      push(track(PyValue::dict()));
      break;
    case 'd': {  // DICT
      auto items = pop_mark();
      push(track(PyValue::dict()));
      set_items(std::move(items));
      break;
    }
    case 's': {  // SETITEM
      PyValue v = pop();
      PyValue k = pop();
      top_of(PyValue::Kind::kDict, "SETITEM").mutable_dict().set(k, std::move(v));
      break;
    }
    case 'u':
      set_items(pop_mark());
      break;
    case 'c': {  // GLOBAL
      const auto module = read_line();
      const auto name = read_line();
      global(module, name);
      break;
    }
    case 0x93: {  // STACK_GLOBAL
      const PyValue name = pop();
      const PyValue module = pop();
      if (!name.is_string() || !module.is_string()) fail("STACK_GLOBAL needs two strings");
      global(module.to_string(), name.to_string());
      break;
    }
    case 'R': {  // REDUCE
      PyValue args = pop();
      PyValue fn = pop();
      if (fn.kind() != PyValue::Kind::kGlobal) fail("REDUCE on a " + fn.type_name());
      try {
        push(track(detail::call_global(fn.to_string(), args)));
      } catch (const std::runtime_error& e) {
        fail(e.what());
      }
      break;
    }
    case 'b':
      build();
      break;
    case 'Q':
      persistent_load();
      break;
    case 'q':
      memo_put(static_cast<uint32_t>(read_le(1)));
      break;
    case 'r':
      memo_put(static_cast<uint32_t>(read_le(4)));
      break;
    case 'p':
      memo_put(read_decimal_line());
      break;
    case 0x94:  // MEMOIZE
      memo_put(static_cast<uint32_t>(memo_.size()));
      break;
    case 'h':
      memo_get(static_cast<uint32_t>(read_le(1)));
      break;
    case 'j':
      memo_get(static_cast<uint32_t>(read_le(4)));
      break;
    case 'g':
      memo_get(read_decimal_line());
      break;
    case 0x81:
    case 0x92:
    case 'i':
    case 'o':
      fail(fmt::format("opcode 0x{:02x} creates an arbitrary object; refused", op));
    case 0x8f:
    case 0x90:
    case 0x91:
      fail("sets are not supported in checkpoints");
    default:
      fail(fmt::format("unsupported pickle opcode 0x{:02x}", op));
  }
}

}  // namespace

PyValue unpickle(const void* data, size_t size, const StorageLoader& loader, const UnpickleLimits& limits) {
  Unpickler u(data, size, loader, limits);
  return u.run();
}

}  // namespace rla::io
