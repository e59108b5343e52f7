#pragma once
// The error of a bad option value, naming the option by its field: the library speaks of fields
// (their config.json keys, e.g. "warmup_epochs"), never of command-line flags; a program that has
// flags (apps/rla) turns the field names of the message into its own spellings.
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace rla::util {

/// A value of one configuration field (or a combination of several) that is out of range,
/// unknown or contradicts another. what() names each field exactly as fields() spells it, e.g.
/// "warmup_epochs must be >= 0, got -1", so that a program may replace those words by its own
/// names for the options (the CLI: its flags).
class FieldError : public std::invalid_argument {
 public:
  FieldError(std::string field, const std::string& message)
      : std::invalid_argument(message), fields_{std::move(field)} {}
  /// `fields`: every field the message names, the one at fault first.
  FieldError(std::initializer_list<std::string> fields, const std::string& message)
      : std::invalid_argument(message), fields_(fields) {
    if (fields_.empty()) fields_.emplace_back();
  }
  /// The field at fault (its config.json key).
  const std::string& field() const noexcept { return fields_.front(); }
  /// Every field the message names, field() first.
  const std::vector<std::string>& fields() const noexcept { return fields_; }

 private:
  std::vector<std::string> fields_;
};

}  // namespace rla::util
