// Loads one YAML document with the syntax checks yaml-cpp lacks, and reads mapping entries
// with type checks. It has no code for rules, durations or files on disk.
#include "config_yaml.hpp"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace koji_exporter::detail {

namespace {

// Returns the position just past the last character of `text`, for problems that
// yaml-cpp reports without a position.
YAML::Mark EndOfText(const std::string& text) {
  YAML::Mark mark;
  mark.pos = static_cast<int>(text.size());
  mark.line = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  const auto last_newline = text.rfind('\n');
  mark.column = static_cast<int>(
      last_newline == std::string::npos ? text.size() : text.size() - last_newline - 1);
  return mark;
}

NodeKey KeyOf(const YAML::Node& node) { return {node.Mark().pos, node.Type()}; }

// Returns whether the quoted scalar starting at `start` has its closing quote in `text`.
bool HasClosingQuote(const std::string& text, std::size_t start) {
  const char quote = text[start];
  for (std::size_t i = start + 1; i < text.size(); ++i) {
    // Skip what cannot close the string: an escape sequence in double quotes, and a
    // doubled quote in single quotes.
    const bool escape = quote == '"' && text[i] == '\\';
    const bool doubled =
        quote == '\'' && text[i] == '\'' && i + 1 < text.size() && text[i + 1] == '\'';
    if (escape || doubled) {
      ++i;
    } else if (text[i] == quote) {
      return true;
    }
  }
  return false;
}

// Finds a quoted scalar whose closing quote is missing. yaml-cpp 0.7 accepts such a
// scalar when the file ends inside it, so the rest of the file silently becomes its text.
std::optional<YAML::Mark> FindUnterminatedQuote(const YAML::Node& node, const std::string& text,
                                                std::size_t offset, std::set<NodeKey>& visited) {
  if (!visited.insert(KeyOf(node)).second) return std::nullopt;
  if (node.IsScalar()) {
    // A quoted or block scalar has the tag "!", and a plain one has "?".
    const auto start = static_cast<std::size_t>(node.Mark().pos) + offset;
    const bool quoted =
        node.Tag() == "!" && start < text.size() && (text[start] == '"' || text[start] == '\'');
    if (quoted && !HasClosingQuote(text, start)) return node.Mark();
    return std::nullopt;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::optional<YAML::Mark> found;
    if (node.IsMap()) {
      found = FindUnterminatedQuote(it->first, text, offset, visited);
      if (!found) found = FindUnterminatedQuote(it->second, text, offset, visited);
    } else {
      found = FindUnterminatedQuote(*it, text, offset, visited);
    }
    if (found) return found;
  }
  return std::nullopt;
}

}  // namespace

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

bool IsBlank(const std::string& text) {
  return text.find_first_not_of(" \t\r\n") == std::string::npos;
}

std::string FormatMark(const SourceMark& mark) {
  return fmt::format("{}:{}:{}", mark.file, mark.line, mark.column);
}

namespace {

// Records where each document of a stream has content, without building nodes: enough to
// find the documents after the first that are not empty.
class DocumentScanner : public YAML::EventHandler {
 public:
  // Position of the first content of each document after the first, if it has any.
  std::vector<YAML::Mark> later_content;

  void OnDocumentStart(const YAML::Mark&) override {
    ++documents_;
    has_content_ = false;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Content(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Content(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Content(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Content(mark);
  }
  void OnMapEnd() override {}

 private:
  void Content(const YAML::Mark& mark) {
    if (documents_ > 1 && !has_content_) later_content.push_back(mark);
    has_content_ = true;
  }

  int documents_ = 0;
  bool has_content_ = false;
};

// yaml-cpp 0.7's LoadAll never returns for some malformed input (",unes\n:\n d\n" is one,
// found by fuzzing): its parser reports another document forever without consuming text.
// So the first document is loaded with Load, and the rest of the stream is only scanned,
// for at most this many documents.
constexpr int kMaxScannedDocuments = 16;

}  // namespace

std::optional<YAML::Node> LoadDocument(const std::string& text, ProblemList& problems) {
  const Scope scope{problems, ""};
  YAML::Node first;
  DocumentScanner scanner;
  try {
    first = YAML::Load(text);
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    for (int document = 0; document < kMaxScannedDocuments; ++document) {
      if (!parser.HandleNextDocument(scanner)) break;
    }
  } catch (const YAML::Exception& error) {
    scope.Report(error.mark.is_null() ? EndOfText(text) : error.mark,
                 fmt::format("invalid YAML: {}", error.msg));
    return std::nullopt;
  }

  // yaml-cpp's marks do not count a UTF-8 byte order mark.
  const std::size_t offset = StartsWith(text, "\xEF\xBB\xBF") ? 3 : 0;
  std::set<NodeKey> visited;
  if (auto mark = FindUnterminatedQuote(first, text, offset, visited)) {
    scope.Report(*mark,
                 "invalid YAML: quoted string has no closing quote, so it runs to the end of "
                 "the file");
    return std::nullopt;
  }

  for (const YAML::Mark& mark : scanner.later_content) {
    scope.Report(mark,
                 "a file holds one YAML document; remove the \"---\" line and merge this "
                 "document into the first");
  }
  return first;
}

void DuplicateKeyChecker::Check(const YAML::Node& node, const Scope& scope) {
  if (!visited_.insert(KeyOf(node)).second) return;
  if (node.IsSequence()) {
    for (const auto& item : node) Check(item, scope);
    return;
  }
  if (!node.IsMap()) return;

  std::map<std::string, YAML::Mark> first_marks;
  for (const auto& pair : node) {
    if (pair.first.IsScalar()) {
      const auto [first, inserted] = first_marks.emplace(pair.first.Scalar(), pair.first.Mark());
      if (!inserted) {
        scope.Report(pair.first.Mark(),
                     fmt::format("duplicate key \"{}\" (first at {})", pair.first.Scalar(),
                                 FormatMark(scope.problems.ToSourceMark(first->second))));
      }
    }
    Check(pair.first, scope);
    Check(pair.second, scope);
  }
}

std::string DescribeNode(const YAML::Node& node) {
  constexpr std::size_t kMaxQuoted = 40;
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "it has no value";
    case YAML::NodeType::Scalar: {
      std::string text = node.Scalar();
      if (text.size() > kMaxQuoted) text = text.substr(0, kMaxQuoted) + "...";
      return fmt::format("it is the string \"{}\"", text);
    }
    case YAML::NodeType::Sequence:
      return "it is a list";
    case YAML::NodeType::Map:
      return "it is a map";
    case YAML::NodeType::Undefined:
      break;
  }
  return "it is missing";
}

void RequireKeys(const YAML::Node& map, const Entries& entries,
                 const std::vector<std::string>& required, const Scope& scope) {
  for (const auto& key : required) {
    if (entries.count(key) == 0) {
      scope.Report(map.Mark(), fmt::format("missing required key \"{}\"", key));
    }
  }
}

const Entry* FindEntry(const Entries& entries, const std::string& key) {
  const auto it = entries.find(key);
  return it == entries.end() ? nullptr : &it->second;
}

bool CheckType(const Entry& entry, const std::string& key, YAML::NodeType::value type,
               const char* expected, const Scope& scope) {
  if (entry.value.Type() == type) return true;
  scope.Report(entry.Mark(),
               fmt::format("\"{}\" must be {}, but {}", key, expected, DescribeNode(entry.value)));
  return false;
}

bool CheckItemType(const YAML::Node& item, std::size_t index, const Entry& list,
                   const std::string& key, YAML::NodeType::value type, const char* expected,
                   const Scope& scope) {
  if (item.Type() == type) return true;
  // An empty item has the position of the next token, like an empty value.
  const YAML::Mark mark = item.IsNull() ? list.Mark() : item.Mark();
  scope.Report(mark, fmt::format("item {} of \"{}\" must be {}, but {}", index + 1, key, expected,
                                 DescribeNode(item)));
  return false;
}

std::optional<std::string> ReadString(const Entries& entries, const std::string& key,
                                      const Scope& scope) {
  const Entry* entry = FindEntry(entries, key);
  if (entry == nullptr) return std::nullopt;
  if (!CheckType(*entry, key, YAML::NodeType::Scalar, "a string", scope)) return std::nullopt;
  return entry->value.Scalar();
}

}  // namespace koji_exporter::detail
