#pragma once
// The pickle interpreter behind io::unpickle (pickle_reader.cpp: driver and object rules;
// pickle_opcodes.cpp: the opcode table). A plain state machine over the bytes: every opcode
// consumes at least one byte, every length is checked against what is left, and objects are
// built only from the whitelist in pickle_globals.cpp. Internal; not installed.
#include <fmt/format.h>

#include <cstring>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "rla/io/pickle.h"

namespace rla::io::detail {

class Unpickler {
 public:
  Unpickler(const void* data, size_t size, const StorageLoader& loader, const UnpickleLimits& limits)
      : p_(static_cast<const uint8_t*>(data)), size_(size), loader_(loader), limits_(limits) {}

  // Containers can reference each other in cycles (a malicious file can build a list that holds
  // itself); shared_ptr would leak them. Every container created is cleared unless it belongs to
  // the (checked acyclic) result.
  ~Unpickler();

  PyValue run();

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

  PyValue decode_long(uint64_t n);

  PyValue text_int(bool long_form);

  void set_items(std::vector<PyValue> items);

  void global(const std::string& module, const std::string& name);

  void persistent_load();

  void build();

  void memo_put(uint32_t idx) { memo_[idx] = top(); }
  void memo_get(uint32_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) fail(fmt::format("memo entry {} is not defined", idx));
    push(it->second);
  }

  /// One opcode; the groups below each handle a family and return false for any other.
  void step(uint8_t op);
  bool step_number(uint8_t op);
  bool step_string(uint8_t op);
  bool step_container(uint8_t op);
  bool step_reference(uint8_t op);

  // Depth-first walk of the result: no cycles, bounded depth, no reader-internal values.
  void check(const PyValue& v, size_t depth, std::unordered_map<const void*, int>& state);

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

}  // namespace rla::io::detail
