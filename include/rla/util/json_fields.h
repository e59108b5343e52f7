#pragma once
// Options structs read and written as JSON from one list of their fields. A struct lists each
// option once, with its JSON key, in a static `visit_fields(self, visit)` that calls
// `visit("key", self.member)` for every option (self may be const); JsonWriter and JsonReader are
// two such visitors, so the key, the member and its type are never written twice. Enums list
// their names once in an EnumNames table that parses (naming the field on an unknown name) and
// prints them.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <array>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "rla/util/field_error.h"

namespace rla::util {

/// The names of an enum's values, in the order they are listed to users.
template <typename E, size_t N>
struct EnumNames {
  const char* field;  ///< the option these values belong to, for errors (e.g. "schedule")
  std::array<std::pair<E, const char*>, N> names;

  /// The value named `text`. Throws FieldError(field) listing the names otherwise.
  E parse(const std::string& text) const {
    for (const auto& [value, name] : names)
      if (text == name) return value;
    std::string expected;
    for (size_t i = 0; i < N; ++i)
      expected += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(names[i].second);
    throw FieldError(field, fmt::format("{}: unknown '{}' (expected {})", field, text, expected));
  }
  const char* name(E value) const {
    for (const auto& [v, name] : names)
      if (v == value) return name;
    return "?";
  }
  std::vector<std::string> all() const {
    std::vector<std::string> out;
    for (const auto& n : names) out.emplace_back(n.second);
    return out;
  }
};

/// Writes every visited field as out[key]. An unset std::optional is left out, except an
/// optional enum, which is written as "" (the JSON form of "none" for such fields).
class JsonWriter {
 public:
  explicit JsonWriter(nlohmann::json& out) : out_(out) {}
  template <typename T>
  void operator()(const char* key, const T& value) {
    out_[key] = value;
  }
  template <typename T>
  void operator()(const char* key, const std::optional<T>& value) {
    if (value) {
      out_[key] = *value;
    } else if constexpr (std::is_enum_v<T>) {
      out_[key] = "";
    }
  }

 private:
  nlohmann::json& out_;
};

/// Reads every visited field that `in` holds (and is not null); the others keep their values.
/// A value of the wrong type, or an enum name that does not parse, throws FieldError(key).
class JsonReader {
 public:
  explicit JsonReader(const nlohmann::json& in) : in_(in) {}
  template <typename T>
  void operator()(const char* key, T& value) {
    const auto it = in_.find(key);
    if (it == in_.end() || it->is_null()) return;
    try {
      read(*it, value);
    } catch (const FieldError&) {
      throw;
    } catch (const nlohmann::json::exception&) {
      throw FieldError(key, fmt::format("{} has the wrong type ({})", key, it->dump()));
    } catch (const std::invalid_argument& e) {
      throw FieldError(key, fmt::format("{}: {}", key, e.what()));
    }
  }

 private:
  template <typename T>
  static void read(const nlohmann::json& j, T& value) {
    j.get_to(value);
  }
  template <typename T>
  static void read(const nlohmann::json& j, std::optional<T>& value) {
    if constexpr (std::is_enum_v<T>) {
      if (j.is_string() && j.get<std::string>().empty()) {
        value.reset();
        return;
      }
    }
    T t{};
    read(j, t);
    value = t;
  }
  template <typename T, size_t N>
  static void read(const nlohmann::json& j, std::array<T, N>& value) {
    if (!j.is_array() || j.size() != N)
      throw std::invalid_argument(fmt::format("must hold {} values, got {}", N, j.dump()));
    for (size_t i = 0; i < N; ++i) value[i] = j[i].get<T>();
  }

  const nlohmann::json& in_;
};

}  // namespace rla::util
