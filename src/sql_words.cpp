#include "sql_words.hpp"

#include <cctype>

namespace koji_exporter::detail {
namespace {

bool IsWordStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }

bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}

// Returns the position after the literal that starts with the quote at `at`. A doubled
// quote is one quote character. With `backslashes`, a backslash escapes the next one.
std::size_t SkipQuoted(const std::string& sql, std::size_t at, bool backslashes) {
  const char quote = sql[at++];
  while (at < sql.size()) {
    if (backslashes && sql[at] == '\\') {
      at += 2;
    } else if (sql[at] == quote) {
      if (at + 1 < sql.size() && sql[at + 1] == quote) {
        at += 2;
      } else {
        return at + 1;
      }
    } else {
      ++at;
    }
  }
  return sql.size();
}

// Returns the length of a dollar-quote tag ($$ or $name$) at `at`, or 0 if there is none.
std::size_t DollarTagLength(const std::string& sql, std::size_t at) {
  std::size_t end = at + 1;
  while (end < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[end])) ||
                              sql[end] == '_')) {
    ++end;
  }
  if (end < sql.size() && sql[end] == '$' &&
      !std::isdigit(static_cast<unsigned char>(sql[at + 1]))) {
    return end + 1 - at;
  }
  return 0;
}

}  // namespace

std::size_t SkipBlockComment(const std::string& sql, std::size_t at) {
  int depth = 0;
  do {
    if (sql.compare(at, 2, "/*") == 0) {
      ++depth;
      at += 2;
    } else if (sql.compare(at, 2, "*/") == 0) {
      --depth;
      at += 2;
    } else {
      ++at;
    }
  } while (depth > 0 && at < sql.size());
  return at;
}

std::vector<std::string> TopLevelWords(const std::string& sql) {
  std::vector<std::string> words;
  int depth = 0;
  std::size_t at = 0;
  while (at < sql.size()) {
    const char c = sql[at];
    if (sql.compare(at, 2, "--") == 0) {
      at = sql.find('\n', at);
      if (at == std::string::npos) break;
    } else if (sql.compare(at, 2, "/*") == 0) {
      at = SkipBlockComment(sql, at);
    } else if (c == '\'' || c == '"') {
      at = SkipQuoted(sql, at, false);
    } else if ((c == 'E' || c == 'e') && at + 1 < sql.size() && sql[at + 1] == '\'' &&
               (at == 0 || !IsWordChar(sql[at - 1]))) {
      at = SkipQuoted(sql, at + 1, true);
    } else if (c == '$' && DollarTagLength(sql, at) > 0) {
      const std::string tag = sql.substr(at, DollarTagLength(sql, at));
      const std::size_t end = sql.find(tag, at + tag.size());
      at = end == std::string::npos ? sql.size() : end + tag.size();
    } else if (c == '(') {
      ++depth;
      ++at;
    } else if (c == ')') {
      if (depth > 0) --depth;
      ++at;
    } else if (IsWordStart(c)) {
      std::string word;
      while (at < sql.size() && IsWordChar(sql[at])) {
        word += static_cast<char>(std::toupper(static_cast<unsigned char>(sql[at])));
        ++at;
      }
      if (depth == 0) words.push_back(std::move(word));
    } else {
      ++at;
    }
  }
  return words;
}

}  // namespace koji_exporter::detail
