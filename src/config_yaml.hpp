// Problem lists and checked reads of YAML mappings, shared by the configuration loader's
// source files. It covers YAML and the message format, not the meaning of any key.
#pragma once

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "koji_exporter/rule.hpp"

namespace koji_exporter::detail {

bool StartsWith(const std::string& text, const std::string& prefix);
bool IsBlank(const std::string& text);
std::string FormatMark(const SourceMark& mark);

// ---------------------------------------------------------------------------------------
// Problems

// The problems found in one file, listed in file order however they were found.
class ProblemList {
 public:
  explicit ProblemList(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }

  // Converts yaml-cpp's 0-based mark to a 1-based one. yaml-cpp gives a node that has no
  // position (such as an empty document) the mark -1, so such problems go to line 1.
  SourceMark ToSourceMark(const YAML::Mark& mark) const {
    if (mark.is_null()) return SourceMark{file_, 1, 1};
    return SourceMark{file_, mark.line + 1, mark.column + 1};
  }

  void Add(const SourceMark& mark, const std::string& rule, const std::string& text) {
    std::string message = fmt::format("{}:{}:{}: ", file_, mark.line, mark.column);
    if (!rule.empty()) message += fmt::format("rule \"{}\": ", rule);
    problems_.push_back({mark.line, mark.column, message + text});
  }

  // Adds a problem about the whole file, such as one that prevents reading it.
  void AddForFile(const std::string& text) {
    problems_.push_back({0, 0, fmt::format("{}: {}", file_, text)});
  }

  bool empty() const { return problems_.empty(); }

  std::vector<std::string> InFileOrder() const {
    std::vector<Problem> sorted = problems_;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Problem& a, const Problem& b) {
      return std::make_pair(a.line, a.column) < std::make_pair(b.line, b.column);
    });
    std::vector<std::string> messages;
    for (auto& problem : sorted) messages.push_back(std::move(problem.message));
    return messages;
  }

 private:
  struct Problem {
    int line;
    int column;
    std::string message;
  };

  std::string file_;
  std::vector<Problem> problems_;
};

// Context for reporting problems while one part of a file is read. `rule` is the name of
// the enclosing rule once it is known to be valid, and becomes the `rule "name": ` prefix.
struct Scope {
  ProblemList& problems;
  std::string rule;

  void Report(const YAML::Mark& mark, const std::string& text) const {
    problems.Add(problems.ToSourceMark(mark), rule, text);
  }
};

// ---------------------------------------------------------------------------------------
// Reading YAML

// Identifies a node by position and type. An alias shares its anchor's node and mark, so
// walks that remember these visit each node once, even through recursive aliases.
using NodeKey = std::pair<int, int>;

// Parses `text` as one YAML document. Returns std::nullopt after reporting a syntax
// problem, in which case nothing else in the file is checked. An empty file is a null
// node.
std::optional<YAML::Node> LoadDocument(const std::string& text, ProblemList& problems);

// Reports repeated keys in every mapping below a node. yaml-cpp 0.7 keeps all of them,
// and a lookup returns the first, so a later repeat would be ignored without a word.
class DuplicateKeyChecker {
 public:
  void Check(const YAML::Node& node, const Scope& scope);

 private:
  std::set<NodeKey> visited_;
};

// Describes what a node is, for "must be X, but ..." messages.
std::string DescribeNode(const YAML::Node& node);

// One key of a mapping and its value.
struct Entry {
  YAML::Node key;
  YAML::Node value;

  // yaml-cpp gives an empty value the position of the next token, which may be lines
  // further down, so problems with an empty value point at its key instead.
  YAML::Mark Mark() const { return value.IsNull() ? key.Mark() : value.Mark(); }
};

using Entries = std::map<std::string, Entry>;

// Reads the entries of a mapping and reports keys outside `allowed`. A repeated key keeps
// its first value, and DuplicateKeyChecker reports the repeat.
template <std::size_t N>
Entries ReadEntries(const YAML::Node& map, const std::array<const char*, N>& allowed,
                    const Scope& scope) {
  Entries entries;
  for (const auto& pair : map) {
    if (!pair.first.IsScalar()) {
      scope.Report(pair.first.Mark(),
                   fmt::format("a key must be a string, but {}", DescribeNode(pair.first)));
      continue;
    }
    const std::string& key = pair.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      scope.Report(pair.first.Mark(),
                   fmt::format("unknown key \"{}\" (allowed: {})", key, fmt::join(allowed, ", ")));
      continue;
    }
    entries.emplace(key, Entry{pair.first, pair.second});
  }
  return entries;
}

void RequireKeys(const YAML::Node& map, const Entries& entries,
                 const std::vector<std::string>& required, const Scope& scope);

const Entry* FindEntry(const Entries& entries, const std::string& key);

// Returns whether the value of `key` has the node type `type`, after reporting that it
// has not. `expected` describes the right value, e.g. "a list of column names".
bool CheckType(const Entry& entry, const std::string& key, YAML::NodeType::value type,
               const char* expected, const Scope& scope);

// Same as CheckType for the items of a list; `index` counts from 0.
bool CheckItemType(const YAML::Node& item, std::size_t index, const Entry& list,
                   const std::string& key, YAML::NodeType::value type, const char* expected,
                   const Scope& scope);

std::optional<std::string> ReadString(const Entries& entries, const std::string& key,
                                      const Scope& scope);

}  // namespace koji_exporter::detail
