#include "rla/util/parse.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace rla::util {

std::vector<int64_t> parse_int_list(const std::string& text, size_t count, const std::string& what) {
  const std::string expected = "expected " + std::to_string(count) + " comma-separated positive integers";
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v <= 0 || v > (1 << 20))
      throw std::invalid_argument("malformed " + what + " '" + text + "': " + expected);
    out.push_back(v);
  }
  if (out.size() != count || (!text.empty() && text.back() == ','))
    throw std::invalid_argument("malformed " + what + " '" + text + "': " + expected);
  return out;
}

std::vector<double> parse_double_list(const std::string& text, size_t count, const std::string& what) {
  const std::string expected = "expected " + std::to_string(count) + " comma-separated numbers";
  std::vector<double> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !std::isfinite(v))
      throw std::invalid_argument("malformed " + what + " '" + text + "': " + expected);
    out.push_back(v);
  }
  if (out.size() != count || (!text.empty() && text.back() == ','))
    throw std::invalid_argument("malformed " + what + " '" + text + "': " + expected);
  return out;
}

}  // namespace rla::util
