#pragma once
// The command line's names for the library's fields. The library names an option by its field
// (its config.json key, util::FieldError); only this layer knows the flags, and turns one into
// the other by a rule ("--" + field with '_' -> '-') and a table of the flags spelled otherwise.
#include <string>
#include <vector>

#include "rla/util/field_error.h"

namespace rla::app {

/// The flag that sets `field`: "warmup_epochs" -> "--warmup-epochs", "weight_decay" -> "--wd".
std::string flag_for_field(const std::string& field);
/// The flag that turns boolean `field` off ("nesterov" -> "--no-nesterov"), "" when it has none.
std::string negative_flag_for_field(const std::string& field);
/// `text` with the first whole-word mention of each of `fields` spelled as the user types it:
/// "field = false" as the field's negative flag, then the field itself as its flag.
std::string with_flags(std::string text, const std::vector<std::string>& fields);
/// e.what() with the fields it names as flags ("warmup_epochs must be >= 0, got -1" ->
/// "--warmup-epochs must be >= 0, got -1").
std::string message_with_flags(const util::FieldError& e);

}  // namespace rla::app
