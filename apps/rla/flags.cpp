#include "flags.h"

#include <cctype>
#include <map>

namespace rla::app {
namespace {

// Fields whose flag is not "--" + field with '_' -> '-'.
const std::map<std::string, std::string>& spelled_otherwise() {
  static const std::map<std::string, std::string> table = {
      {"weight_decay", "--wd"},
      {"mixup_alpha", "--mixup"},
      {"cutmix_alpha", "--cutmix"},
      {"grad_clip", "--clip-grad-norm"},
      {"time_budget_minutes", "--time-budget"},
      {"init_checkpoint", "--init-from"},
      {"out_dir", "--out"},
      {"randaugment_ops", "--randaugment-n"},
      {"randaugment_magnitude", "--randaugment-m"},
      {"calibration_images", "--calib"},
      {"timeout_s", "--dist-timeout"},
  };
  return table;
}

// Boolean fields with a flag that turns them off.
const std::map<std::string, std::string>& negative_flags() {
  static const std::map<std::string, std::string> table = {
      {"augment", "--no-augment"},
      {"nesterov", "--no-nesterov"},
      {"channels_last", "--nchw"},
  };
  return table;
}

bool word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// Replaces the first occurrence of `word` in `text` that is a whole word (a flag's "--" before it
// or a longer name around it are not).
void replace_word(std::string& text, const std::string& word, const std::string& by) {
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    const bool starts = at == 0 || !(word_char(text[at - 1]) || text[at - 1] == '-');
    const size_t end = at + word.size();
    if (starts && (end == text.size() || !word_char(text[end]))) {
      text.replace(at, word.size(), by);
      return;
    }
  }
}

}  // namespace

std::string flag_for_field(const std::string& field) {
  const auto it = spelled_otherwise().find(field);
  if (it != spelled_otherwise().end()) return it->second;
  std::string flag = "--" + field;
  for (auto& c : flag)
    if (c == '_') c = '-';
  return flag;
}

std::string negative_flag_for_field(const std::string& field) {
  const auto it = negative_flags().find(field);
  return it == negative_flags().end() ? "" : it->second;
}

std::string with_flags(std::string text, const std::vector<std::string>& fields) {
  for (const auto& field : fields) {
    if (field.empty()) continue;
    if (const auto off = negative_flag_for_field(field); !off.empty())
      replace_word(text, field + " = false", off);
    replace_word(text, field, flag_for_field(field));
  }
  return text;
}

std::string message_with_flags(const util::FieldError& e) {
  return with_flags(e.what(), e.fields());
}

}  // namespace rla::app
