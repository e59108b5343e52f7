#include "rla/util/parse.h"

#include <cmath>
#include <functional>
#include <sstream>
#include <stdexcept>

namespace rla::util {
namespace {

// Splits `text` at commas and converts each item with `convert` (which returns false for an
// item it rejects); throws naming `what` unless there are exactly `count` items, all accepted.
template <typename T>
std::vector<T> parse_list(const std::string& text, size_t count, const std::string& what,
                          const std::string& kind,
                          const std::function<bool(const std::string&, T&)>& convert) {
  const std::string expected = "expected " + std::to_string(count) + " comma-separated " + kind;
  std::vector<T> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    T v{};
    if (!convert(item, v)) throw std::invalid_argument("malformed " + what + " '" + text + "': " + expected);
    out.push_back(v);
  }
  if (out.size() != count || (!text.empty() && text.back() == ','))
    throw std::invalid_argument("malformed " + what + " '" + text + "': " + expected);
  return out;
}

}  // namespace

std::vector<int64_t> parse_int_list(const std::string& text, size_t count, const std::string& what) {
  return parse_list<int64_t>(text, count, what, "positive integers", [](const std::string& item, int64_t& v) {
    size_t used = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      return false;
    }
    return used > 0 && used == item.size() && v > 0 && v <= (1 << 20);
  });
}

std::vector<double> parse_double_list(const std::string& text, size_t count, const std::string& what) {
  return parse_list<double>(text, count, what, "numbers", [](const std::string& item, double& v) {
    size_t used = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      return false;
    }
    return used > 0 && used == item.size() && std::isfinite(v);
  });
}

}  // namespace rla::util
