// Reads the words of an SQL text that lie outside parentheses, comments, string literals
// and quoted identifiers: enough to see the clauses of the outermost query.
#pragma once

#include <string>
#include <vector>

namespace koji_exporter::detail {

// Returns the position after the nested /* */ comment that starts at `at`, or the size of
// `sql` when the comment is not closed.
std::size_t SkipBlockComment(const std::string& sql, std::size_t at);

// Returns the words (a letter or underscore, then letters, digits, underscores or dollar
// signs) of `sql` at parenthesis depth 0, in upper case and in order. Comments (`--` and nested `/* */`),
// 'string' and E'string' literals, dollar-quoted strings and "identifiers" are skipped.
std::vector<std::string> TopLevelWords(const std::string& sql);

}  // namespace koji_exporter::detail
