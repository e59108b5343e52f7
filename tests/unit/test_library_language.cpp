// The library speaks its own language (STYLE.md, habit 14): no string literal in the library's
// sources (include/rla, src) names a command-line flag ("--something"). Only apps/rla knows the
// flags; library errors name fields (util::FieldError), which the CLI turns into flags.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// The contents of every string literal in C++ source `text` (comments and character literals
// skipped; raw strings R"d(...)d" included).
std::vector<std::string> string_literals(const std::string& text) {
  std::vector<std::string> out;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    if (text.compare(i, 2, "//") == 0) {
      i = text.find('\n', i);
      if (i == std::string::npos) break;
    } else if (text.compare(i, 2, "/*") == 0) {
      i = text.find("*/", i + 2);
      if (i == std::string::npos) break;
      i += 2;
    } else if (text[i] == '\'') {
      ++i;
      while (i < n && text[i] != '\'') i += text[i] == '\\' ? 2 : 1;
      ++i;
    } else if (text.compare(i, 2, "R\"") == 0 &&
               (i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1])))) {
      const size_t open = text.find('(', i);
      const std::string close = ")" + text.substr(i + 2, open - i - 2) + "\"";
      const size_t end = text.find(close, open);
      out.push_back(text.substr(open + 1, end - open - 1));
      i = end + close.size();
    } else if (text[i] == '"') {
      std::string literal;
      ++i;
      while (i < n && text[i] != '"') {
        if (text[i] == '\\' && i + 1 < n) literal += text[i++];
        literal += text[i++];
      }
      out.push_back(literal);
      ++i;
    } else {
      ++i;
    }
  }
  return out;
}

bool names_a_flag(const std::string& literal) {
  for (size_t at = literal.find("--"); at != std::string::npos; at = literal.find("--", at + 1)) {
    const bool starts = at == 0 || !std::isalnum(static_cast<unsigned char>(literal[at - 1]));
    if (starts && at + 2 < literal.size() && std::islower(static_cast<unsigned char>(literal[at + 2])))
      return true;
  }
  return false;
}

}  // namespace

TEST(LibraryLanguage, TheScannerFindsFlagsInStringsOnly) {
  const auto found = string_literals(R"cpp(
    // a comment naming --epochs is fine
    /* so is --lr here */
    throw std::invalid_argument("--epochs must be positive");
    auto s = "epochs must be positive, got " + std::to_string(-1);
    char c = '"';
    auto quoted = "say \"--\" twice";
    auto raw = R"x(see --help)x";
  )cpp");
  ASSERT_EQ(found.size(), 4u);
  EXPECT_TRUE(names_a_flag(found[0]));
  EXPECT_FALSE(names_a_flag(found[1]));
  EXPECT_FALSE(names_a_flag(found[2]));
  EXPECT_TRUE(names_a_flag(found[3]));
  EXPECT_FALSE(names_a_flag("x--y"));
  EXPECT_FALSE(names_a_flag("-- separator"));
}

TEST(LibraryLanguage, NoLibraryMessageNamesACommandLineFlag) {
  std::vector<std::string> offenders;
  size_t files = 0;
  for (const char* root : {"include/rla", "src"}) {
    for (const auto& e : fs::recursive_directory_iterator(fs::path(RLA_SOURCE_DIR) / root)) {
      const auto ext = e.path().extension();
      if (!e.is_regular_file() || (ext != ".cpp" && ext != ".h")) continue;
      ++files;
      std::ifstream in(e.path());
      std::stringstream text;
      text << in.rdbuf();
      for (const auto& literal : string_literals(text.str()))
        if (names_a_flag(literal))
          offenders.push_back(fs::relative(e.path(), RLA_SOURCE_DIR).string() + ": \"" + literal + "\"");
    }
  }
  EXPECT_GT(files, 100u);
  EXPECT_TRUE(offenders.empty()) << offenders.size() << " library strings name a flag, e.g.\n"
                                 << [&] {
                                      std::string s;
                                      for (size_t i = 0; i < offenders.size() && i < 40; ++i)
                                        s += "  " + offenders[i] + "\n";
                                      return s;
                                    }();
}
