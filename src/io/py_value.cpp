// PyValue and PyDict: the Python values torch.save pickles, as a small C++ value type.
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "rla/io/pickle.h"

namespace rla::io {

namespace {

const char* kind_label(PyValue::Kind k) {
  switch (k) {
    case PyValue::Kind::kNone:
      return "None";
    case PyValue::Kind::kBool:
      return "bool";
    case PyValue::Kind::kInt:
      return "int";
    case PyValue::Kind::kFloat:
      return "float";
    case PyValue::Kind::kString:
      return "str";
    case PyValue::Kind::kBytes:
      return "bytes";
    case PyValue::Kind::kTuple:
      return "tuple";
    case PyValue::Kind::kList:
      return "list";
    case PyValue::Kind::kDict:
      return "dict";
    case PyValue::Kind::kTensor:
      return "Tensor";
    case PyValue::Kind::kGlobal:
      return "global";
    case PyValue::Kind::kStorage:
      return "storage";
  }
  return "?";
}

[[noreturn]] void wrong_kind(const PyValue& v, const char* expected) {
  throw std::runtime_error(fmt::format("expected {}, found {} {}", expected, v.type_name(), v.repr()));
}

// Python's hash equality for keys: True == 1 and 1.0 == 1, so numbers share one form.
std::string hash_key(const PyValue& v, int depth = 0) {
  if (depth > 16) throw std::runtime_error("dict key nested too deeply");
  switch (v.kind()) {
    case PyValue::Kind::kNone:
      return "N";
    case PyValue::Kind::kBool:
    case PyValue::Kind::kInt:
      return "i" + std::to_string(v.to_int());
    case PyValue::Kind::kFloat: {
      const double d = v.to_double();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18)
        return "i" + std::to_string(static_cast<int64_t>(d));
      char buf[sizeof(double)];
      std::memcpy(buf, &d, sizeof(d));
      return "f" + std::string(buf, sizeof(buf));
    }
    case PyValue::Kind::kString:
      return "s" + v.to_string();
    case PyValue::Kind::kBytes:
      return "b" + v.to_string();
    case PyValue::Kind::kTuple: {
      std::string out = "t(";
      for (const auto& item : v.items()) {
        const auto k = hash_key(item, depth + 1);
        out += std::to_string(k.size()) + ":" + k;
      }
      return out + ")";
    }
    default:
      throw std::runtime_error(fmt::format("unhashable dict key of type {}", v.type_name()));
  }
}

}  // namespace

PyValue PyValue::boolean(bool v) {
  PyValue out;
  out.kind_ = Kind::kBool;
  out.int_ = v ? 1 : 0;
  return out;
}

PyValue PyValue::integer(int64_t v) {
  PyValue out;
  out.kind_ = Kind::kInt;
  out.int_ = v;
  return out;
}

PyValue PyValue::floating(double v) {
  PyValue out;
  out.kind_ = Kind::kFloat;
  out.float_ = v;
  return out;
}

PyValue PyValue::string(std::string v) {
  PyValue out;
  out.kind_ = Kind::kString;
  out.str_ = std::make_shared<std::string>(std::move(v));
  return out;
}

PyValue PyValue::bytes(std::string v) {
  PyValue out = string(std::move(v));
  out.kind_ = Kind::kBytes;
  return out;
}

PyValue PyValue::global(std::string qualified_name) {
  PyValue out = string(std::move(qualified_name));
  out.kind_ = Kind::kGlobal;
  return out;
}

PyValue PyValue::tuple(std::vector<PyValue> items) {
  PyValue out;
  out.kind_ = Kind::kTuple;
  out.seq_ = std::make_shared<std::vector<PyValue>>(std::move(items));
  return out;
}

PyValue PyValue::list(std::vector<PyValue> items) {
  PyValue out = tuple(std::move(items));
  out.kind_ = Kind::kList;
  return out;
}

PyValue PyValue::dict(bool ordered) {
  PyValue out;
  out.kind_ = Kind::kDict;
  out.dict_ = std::make_shared<PyDict>(ordered);
  return out;
}

PyValue PyValue::tensor(at::Tensor t) {
  PyValue out;
  out.kind_ = Kind::kTensor;
  out.tensor_ = std::move(t);
  return out;
}

PyValue PyValue::storage(at::Tensor bytes, at::ScalarType dtype) {
  PyValue out;
  out.kind_ = Kind::kStorage;
  out.tensor_ = std::move(bytes);
  out.int_ = static_cast<int64_t>(dtype);
  return out;
}

std::string PyValue::type_name() const {
  if (kind_ == Kind::kDict && dict_->ordered()) return "OrderedDict";
  return kind_label(kind_);
}

bool PyValue::to_bool() const {
  if (kind_ != Kind::kBool) wrong_kind(*this, "bool");
  return int_ != 0;
}

int64_t PyValue::to_int() const {
  if (kind_ != Kind::kInt && kind_ != Kind::kBool) wrong_kind(*this, "int");
  return int_;
}

double PyValue::to_double() const {
  if (kind_ == Kind::kFloat) return float_;
  if (kind_ == Kind::kInt || kind_ == Kind::kBool) return static_cast<double>(int_);
  wrong_kind(*this, "float");
}

const std::string& PyValue::to_string() const {
  if (kind_ != Kind::kString && kind_ != Kind::kBytes && kind_ != Kind::kGlobal) wrong_kind(*this, "str");
  return *str_;
}

const at::Tensor& PyValue::to_tensor() const {
  if (kind_ != Kind::kTensor && kind_ != Kind::kStorage) wrong_kind(*this, "Tensor");
  return tensor_;
}

at::ScalarType PyValue::storage_dtype() const {
  if (kind_ != Kind::kStorage) wrong_kind(*this, "storage");
  return static_cast<at::ScalarType>(int_);
}

const std::vector<PyValue>& PyValue::items() const {
  if (!is_sequence()) wrong_kind(*this, "tuple or list");
  return *seq_;
}

std::vector<PyValue>& PyValue::mutable_items() {
  if (!is_sequence()) wrong_kind(*this, "tuple or list");
  return *seq_;
}

const PyDict& PyValue::to_dict() const {
  if (kind_ != Kind::kDict) wrong_kind(*this, "dict");
  return *dict_;
}

PyDict& PyValue::mutable_dict() {
  if (kind_ != Kind::kDict) wrong_kind(*this, "dict");
  return *dict_;
}

std::string PyValue::repr(size_t max_len) const {
  std::string out;
  switch (kind_) {
    case Kind::kNone:
      out = "None";
      break;
    case Kind::kBool:
      out = int_ ? "True" : "False";
      break;
    case Kind::kInt:
      out = std::to_string(int_);
      break;
    case Kind::kFloat:
      out = fmt::format("{}", float_);
      break;
    case Kind::kString:
    case Kind::kBytes:
      out = fmt::format("{}'{}'", kind_ == Kind::kBytes ? "b" : "", str_->substr(0, max_len));
      break;
    case Kind::kGlobal:
      out = *str_;
      break;
    case Kind::kTuple:
    case Kind::kList:
      out = fmt::format("{}[{} items]", type_name(), seq_->size());
      break;
    case Kind::kDict:
      out = fmt::format("{}[{} items]", type_name(), dict_->size());
      break;
    case Kind::kTensor:
      out =
          tensor_.defined() ? fmt::format("Tensor{}", fmt::join(tensor_.sizes(), "x")) : "Tensor(undefined)";
      break;
    case Kind::kStorage:
      out = "storage";
      break;
  }
  if (out.size() > max_len) out = out.substr(0, max_len) + "...";
  return out;
}

const void* PyValue::container_id() const {
  if (is_sequence()) return seq_.get();
  if (kind_ == Kind::kDict) return dict_.get();
  return nullptr;
}

void PyDict::set(const PyValue& key, PyValue value) {
  auto hk = hash_key(key);
  auto it = index_.find(hk);
  if (it != index_.end()) {
    entries_[it->second].second = std::move(value);
    return;
  }
  index_.emplace(std::move(hk), entries_.size());
  entries_.emplace_back(key, std::move(value));
}

const PyValue* PyDict::find(const PyValue& key) const {
  auto it = index_.find(hash_key(key));
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

const PyValue* PyDict::find(const std::string& key) const {
  auto it = index_.find("s" + key);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

void PyDict::clear() {
  entries_.clear();
  index_.clear();
}

}  // namespace rla::io
