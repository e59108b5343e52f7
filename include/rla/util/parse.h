#pragma once
// Parsing of user-supplied values, with messages that name the option and the bad value.
#include <cstdint>
#include <string>
#include <vector>

namespace rla::util {

/// "3,32,32" -> {3, 32, 32}. Throws std::invalid_argument naming `what` unless the text is
/// exactly `count` comma-separated positive integers.
std::vector<int64_t> parse_int_list(const std::string& text, size_t count, const std::string& what);
/// "0.9,0.999" -> {0.9, 0.999}. Throws std::invalid_argument naming `what` unless the text is
/// exactly `count` comma-separated finite numbers.
std::vector<double> parse_double_list(const std::string& text, size_t count, const std::string& what);

}  // namespace rla::util
