// Turns the main configuration file and the rule files it names into a validated Config.
// Deals with YAML, file globs and Prometheus naming, never with PostgreSQL or HTTP.
#include "koji_exporter/rule_loader.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <glob.h>
#include <sys/socket.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <system_error>
#include <utility>

#include "koji_exporter/names.hpp"

namespace koji_exporter {

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error(fmt::format("{}", fmt::join(problems, "\n"))),
      problems_(std::move(problems)) {}

namespace {

using std::chrono::milliseconds;

constexpr char kDefaultListenAddress[] = ":19716";
constexpr char kDefaultRulePattern[] = "queries/*.yaml";
constexpr int kMaxConnectionsLimit = 64;
constexpr char kSelfMetricPrefix[] = "koji_exporter_";
constexpr char kTotalSuffix[] = "_total";

// The keys allowed in each mapping, in the order that "unknown key" messages list them.
constexpr std::array<const char*, 4> kMainFileKeys = {"database", "web", "rule_files", "defaults"};
constexpr std::array<const char*, 3> kDatabaseKeys = {"dsn", "password_file", "max_connections"};
constexpr std::array<const char*, 1> kWebKeys = {"listen_address"};
constexpr std::array<const char*, 2> kDefaultsKeys = {"interval", "timeout"};
constexpr std::array<const char*, 1> kRuleFileKeys = {"rules"};
constexpr std::array<const char*, 5> kRuleKeys = {"name", "interval", "timeout", "sql", "metrics"};
constexpr std::array<const char*, 6> kMetricKeys = {"name",  "type",   "help",
                                                    "value", "labels", "static_labels"};

struct DurationUnit {
  const char* suffix;
  std::int64_t milliseconds;
};

// Prometheus's duration units, largest first. As in model.ParseDuration of
// github.com/prometheus/common (model/time.go), a duration uses each unit at most once and
// in this order, and a year is 365 days.
constexpr std::array<DurationUnit, 7> kDurationUnits{{
    {"y", 365LL * 24 * 60 * 60 * 1000},
    {"w", 7LL * 24 * 60 * 60 * 1000},
    {"d", 24LL * 60 * 60 * 1000},
    {"h", 60LL * 60 * 1000},
    {"m", 60LL * 1000},
    {"s", 1000},
    {"ms", 1},
}};

struct UnitSuffix {
  const char* suffix;
  const char* base_unit;
};

// Metric name endings that name a non-base unit, with the Prometheus base unit to use.
constexpr std::array<UnitSuffix, 8> kNonBaseUnitSuffixes{{
    {"_ms", "seconds"},
    {"_milliseconds", "seconds"},
    {"_microseconds", "seconds"},
    {"_minutes", "seconds"},
    {"_hours", "seconds"},
    {"_days", "seconds"},
    {"_kb", "bytes"},
    {"_mb", "bytes"},
}};

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool IsBlank(const std::string& text) {
  return text.find_first_not_of(" \t\r\n") == std::string::npos;
}

std::string Trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::string ErrnoText(int error) {
  return std::error_code(error, std::generic_category()).message();
}

std::string FormatMark(const SourceMark& mark) {
  return fmt::format("{}:{}:{}", mark.file, mark.line, mark.column);
}

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

// Identifies a node by position and type. An alias shares its anchor's node and mark, so
// walks that remember these visit each node once, even through recursive aliases.
using NodeKey = std::pair<int, int>;

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

// Parses `text` as one YAML document. Returns std::nullopt after reporting a syntax
// problem, in which case nothing else in the file is checked. An empty file is a null
// node.
std::optional<YAML::Node> LoadDocument(const std::string& text, ProblemList& problems) {
  const Scope scope{problems, ""};
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& error) {
    scope.Report(error.mark.is_null() ? EndOfText(text) : error.mark,
                 fmt::format("invalid YAML: {}", error.msg));
    return std::nullopt;
  }
  if (documents.empty()) return YAML::Node();

  // yaml-cpp's marks do not count a UTF-8 byte order mark.
  const std::size_t offset = StartsWith(text, "\xEF\xBB\xBF") ? 3 : 0;
  std::set<NodeKey> visited;
  if (auto mark = FindUnterminatedQuote(documents[0], text, offset, visited)) {
    scope.Report(*mark,
                 "invalid YAML: quoted string has no closing quote, so it runs to the end of "
                 "the file");
    return std::nullopt;
  }

  for (std::size_t i = 1; i < documents.size(); ++i) {
    if (documents[i].IsNull()) continue;
    scope.Report(documents[i].Mark(),
                 "a file holds one YAML document; remove the \"---\" line and merge this "
                 "document into the first");
  }
  return documents[0];
}

// Reports repeated keys in every mapping below a node. yaml-cpp 0.7 keeps all of them,
// and a lookup returns the first, so a later repeat would be ignored without a word.
class DuplicateKeyChecker {
 public:
  void Check(const YAML::Node& node, const Scope& scope) {
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

 private:
  std::set<NodeKey> visited_;
};

// Describes what a node is, for "must be X, but ..." messages.
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

// Returns whether the value of `key` has the node type `type`, after reporting that it
// has not. `expected` describes the right value, e.g. "a list of column names".
bool CheckType(const Entry& entry, const std::string& key, YAML::NodeType::value type,
               const char* expected, const Scope& scope) {
  if (entry.value.Type() == type) return true;
  scope.Report(entry.Mark(),
               fmt::format("\"{}\" must be {}, but {}", key, expected, DescribeNode(entry.value)));
  return false;
}

// Same as CheckType for the items of a list; `index` counts from 0.
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

// ---------------------------------------------------------------------------------------
// Durations

struct Timing {
  milliseconds interval;
  milliseconds timeout;
};

// Reads a positive duration. Returns std::nullopt if the key is absent or the value was
// reported as unusable.
std::optional<milliseconds> ReadDuration(const Entries& entries, const std::string& key,
                                         const Scope& scope) {
  const Entry* entry = FindEntry(entries, key);
  if (entry == nullptr) return std::nullopt;
  if (!CheckType(*entry, key, YAML::NodeType::Scalar, "a duration such as 30s", scope)) {
    return std::nullopt;
  }

  const std::string& text = entry->value.Scalar();
  milliseconds duration{0};
  // Prometheus durations have no sign. A leading minus still gets the "greater than zero"
  // message, because that states the actual mistake.
  const bool negative = StartsWith(text, "-") && ParseDuration(text.substr(1), &duration);
  if (negative || (ParseDuration(text, &duration) && duration.count() == 0)) {
    scope.Report(entry->Mark(), fmt::format("{} \"{}\" must be greater than zero", key, text));
    return std::nullopt;
  }
  if (!ParseDuration(text, &duration)) {
    scope.Report(entry->Mark(),
                 fmt::format("invalid {} \"{}\": use a Prometheus duration such as 30s, 5m or "
                             "1h30m",
                             key, text));
    return std::nullopt;
  }
  return duration;
}

// Reads "interval" and "timeout", falling back to `defaults` for each one that is absent
// or invalid, and checks that the timeout is shorter than the interval. When neither is
// given, the pair is not checked here, because the defaults were checked where they were set.
Timing ReadTiming(const Entries& entries, const Timing& defaults, const Scope& scope) {
  const auto interval = ReadDuration(entries, "interval", scope);
  const auto timeout = ReadDuration(entries, "timeout", scope);
  const Timing timing{interval.value_or(defaults.interval), timeout.value_or(defaults.timeout)};

  const Entry* interval_entry = FindEntry(entries, "interval");
  const Entry* timeout_entry = FindEntry(entries, "timeout");
  const bool interval_unusable = interval_entry != nullptr && !interval;
  const bool timeout_unusable = timeout_entry != nullptr && !timeout;
  if (interval_unusable || timeout_unusable || (!interval && !timeout)) return timing;
  if (timing.timeout < timing.interval) return timing;

  if (interval && timeout) {
    scope.Report(timeout_entry->Mark(),
                 fmt::format("timeout \"{}\" must be shorter than interval \"{}\"",
                             timeout_entry->value.Scalar(), interval_entry->value.Scalar()));
  } else if (interval) {
    scope.Report(interval_entry->Mark(),
                 fmt::format("default timeout \"{}\" must be shorter than interval \"{}\"; set a "
                             "shorter \"timeout\"",
                             FormatDuration(defaults.timeout), interval_entry->value.Scalar()));
  } else {
    scope.Report(timeout_entry->Mark(),
                 fmt::format("timeout \"{}\" must be shorter than the default interval \"{}\"",
                             timeout_entry->value.Scalar(), FormatDuration(defaults.interval)));
  }
  return timing;
}

// ---------------------------------------------------------------------------------------
// Names

bool IsValidRuleName(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Returns the rule's name if it is valid, for the `rule "name": ` prefix of messages about
// the rest of the rule. Otherwise returns an empty string.
std::string NameForMessages(const YAML::Node& rule) {
  for (const auto& pair : rule) {
    if (pair.first.IsScalar() && pair.first.Scalar() == "name") {
      const bool valid = pair.second.IsScalar() && IsValidRuleName(pair.second.Scalar());
      return valid ? pair.second.Scalar() : "";
    }
  }
  return "";
}

// Reports a metric name that is unusable or breaks Prometheus naming conventions. Returns
// whether the name may be registered, so that duplicates of it can be found.
bool CheckMetricName(const std::string& name, std::optional<MetricType> type,
                     const YAML::Mark& mark, const Scope& scope) {
  if (name.find(':') != std::string::npos) {
    scope.Report(mark, fmt::format("invalid metric name \"{}\": colons are reserved for "
                                   "recording rules",
                                   name));
    return false;
  }
  if (!IsValidMetricName(name)) {
    scope.Report(mark, fmt::format("invalid metric name \"{}\": use letters, digits and "
                                   "underscores, not starting with a digit",
                                   name));
    return false;
  }
  if (StartsWith(name, kSelfMetricPrefix)) {
    scope.Report(mark, fmt::format("metric name \"{}\" starts with \"{}\", which is reserved for "
                                   "the exporter's own metrics",
                                   name, kSelfMetricPrefix));
    return false;
  }

  const bool has_total = EndsWith(name, kTotalSuffix);
  const std::size_t total_length = sizeof(kTotalSuffix) - 1;
  const std::string stem = has_total ? name.substr(0, name.size() - total_length) : name;
  for (const auto& unit : kNonBaseUnitSuffixes) {
    if (!EndsWith(stem, unit.suffix)) continue;
    const std::string suggestion = stem.substr(0, stem.size() - std::string(unit.suffix).size()) +
                                   "_" + unit.base_unit + (has_total ? kTotalSuffix : "");
    scope.Report(mark, fmt::format("metric name \"{}\" ends in the non-base unit \"{}\"; convert "
                                   "the value to {} in SQL and name it \"{}\"",
                                   name, unit.suffix, unit.base_unit, suggestion));
  }

  if (type == MetricType::kCounter && !has_total) {
    scope.Report(mark, fmt::format("counter \"{}\" must end in \"_total\"", name));
  }
  if (type == MetricType::kGauge && has_total) {
    scope.Report(mark, fmt::format("gauge \"{}\" must not end in \"_total\"; make it a counter "
                                   "or rename it",
                                   name));
  }
  return true;
}

// Reports a label name that Prometheus rejects or that rule metrics must not use.
// `key` is "labels" or "static_labels".
void CheckLabelName(const std::string& name, const std::string& key, const YAML::Mark& mark,
                    const Scope& scope) {
  if (StartsWith(name, "__")) {
    scope.Report(mark, fmt::format("label name \"{}\" in \"{}\" starts with \"__\", which "
                                   "Prometheus reserves for its own labels",
                                   name, key));
  } else if (!IsValidLabelName(name)) {
    scope.Report(mark, fmt::format("invalid label name \"{}\" in \"{}\": use letters, digits and "
                                   "underscores, not starting with a digit",
                                   name, key));
  } else if (IsReservedLabelName(name)) {
    scope.Report(mark, fmt::format("label name \"{}\" in \"{}\" is reserved: {}", name, key,
                                   ReservedLabelReason(name)));
  }
}

// ---------------------------------------------------------------------------------------
// Rule files

std::optional<MetricType> ReadMetricType(const Entries& entries, const Scope& scope) {
  const auto text = ReadString(entries, "type", scope);
  if (!text) return std::nullopt;
  if (*text == "gauge") return MetricType::kGauge;
  if (*text == "counter") return MetricType::kCounter;
  scope.Report(FindEntry(entries, "type")->Mark(),
               fmt::format("type \"{}\" is not one of: counter, gauge", *text));
  return std::nullopt;
}

void ReadLabelColumns(const Entries& entries, MetricSpec& spec, const Scope& scope) {
  const Entry* entry = FindEntry(entries, "labels");
  if (entry == nullptr) return;
  if (!CheckType(*entry, "labels", YAML::NodeType::Sequence, "a list of column names", scope)) {
    return;
  }

  for (std::size_t index = 0; index < entry->value.size(); ++index) {
    const YAML::Node item = entry->value[index];
    if (!CheckItemType(item, index, *entry, "labels", YAML::NodeType::Scalar, "a column name",
                       scope)) {
      continue;
    }
    const std::string& label = item.Scalar();
    const auto& columns = spec.label_columns;
    if (std::find(columns.begin(), columns.end(), label) != columns.end()) {
      scope.Report(item.Mark(), fmt::format("label \"{}\" is listed twice in \"labels\"", label));
      continue;
    }
    CheckLabelName(label, "labels", item.Mark(), scope);
    spec.label_columns.push_back(label);
  }
}

void ReadStaticLabels(const Entries& entries, MetricSpec& spec, const Scope& scope) {
  const Entry* entry = FindEntry(entries, "static_labels");
  if (entry == nullptr) return;
  if (!CheckType(*entry, "static_labels", YAML::NodeType::Map, "a map of label names to values",
                 scope)) {
    return;
  }

  std::set<std::string> seen;
  for (const auto& pair : entry->value) {
    if (!pair.first.IsScalar()) {
      scope.Report(pair.first.Mark(), fmt::format("a key in \"static_labels\" must be a string, "
                                                  "but {}",
                                                  DescribeNode(pair.first)));
      continue;
    }
    const std::string& label = pair.first.Scalar();
    // DuplicateKeyChecker reports a repeated key, and its first value is the one used.
    if (!seen.insert(label).second) continue;
    const Entry label_entry{pair.first, pair.second};
    CheckLabelName(label, "static_labels", pair.first.Mark(), scope);
    const auto& columns = spec.label_columns;
    if (std::find(columns.begin(), columns.end(), label) != columns.end()) {
      scope.Report(
          pair.first.Mark(),
          fmt::format("static label \"{}\" is also a label column; keep one of them", label));
    }
    if (!pair.second.IsScalar()) {
      scope.Report(label_entry.Mark(), fmt::format("static label \"{}\" must be a string, but {}",
                                                   label, DescribeNode(pair.second)));
      continue;
    }
    if (pair.second.Scalar().empty()) {
      scope.Report(label_entry.Mark(),
                   fmt::format("static label \"{}\" has an empty value, which Prometheus treats "
                               "as no label",
                               label));
      continue;
    }
    spec.static_labels.emplace(label, pair.second.Scalar());
  }
}

// Reads one item of a rule's "metrics". A name that failed its checks is left empty, so
// that NameIndex does not report duplicates of it.
MetricSpec ReadMetric(const YAML::Node& node, const Scope& scope) {
  MetricSpec spec;
  spec.mark = scope.problems.ToSourceMark(node.Mark());
  const Entries entries = ReadEntries(node, kMetricKeys, scope);
  RequireKeys(node, entries, {"name", "type", "help", "value"}, scope);

  const auto type = ReadMetricType(entries, scope);
  spec.type = type.value_or(MetricType::kGauge);
  if (const auto name = ReadString(entries, "name", scope)) {
    if (CheckMetricName(*name, type, FindEntry(entries, "name")->Mark(), scope)) spec.name = *name;
  }

  if (const auto help = ReadString(entries, "help", scope)) {
    spec.help = Trim(*help);
    if (spec.help.empty()) {
      scope.Report(FindEntry(entries, "help")->Mark(),
                   "\"help\" is empty; say what the metric measures");
    }
  }

  if (const auto value = ReadString(entries, "value", scope)) {
    spec.value_column = *value;
    if (value->empty()) {
      scope.Report(FindEntry(entries, "value")->Mark(),
                   "\"value\" is empty; name the column that gives the sample value");
    }
  }

  ReadLabelColumns(entries, spec, scope);
  const auto& columns = spec.label_columns;
  if (!spec.value_column.empty() &&
      std::find(columns.begin(), columns.end(), spec.value_column) != columns.end()) {
    scope.Report(FindEntry(entries, "value")->Mark(),
                 fmt::format("value column \"{}\" is also listed in \"labels\"; a column gives "
                             "either the value or a label",
                             spec.value_column));
  }
  ReadStaticLabels(entries, spec, scope);
  return spec;
}

void ReadMetrics(const Entries& entries, Rule& rule, const Scope& scope) {
  const Entry* entry = FindEntry(entries, "metrics");
  if (entry == nullptr) return;
  if (!CheckType(*entry, "metrics", YAML::NodeType::Sequence, "a list of metrics", scope)) return;
  if (entry->value.size() == 0) {
    scope.Report(entry->Mark(), "\"metrics\" is empty; add at least one metric");
    return;
  }

  for (std::size_t index = 0; index < entry->value.size(); ++index) {
    const YAML::Node item = entry->value[index];
    if (CheckItemType(item, index, *entry, "metrics", YAML::NodeType::Map, "a map", scope)) {
      rule.metrics.push_back(ReadMetric(item, scope));
    }
  }
}

// Reads one item of "rules". Names that failed their checks are left empty, so that
// NameIndex does not report duplicates of them.
Rule ReadRule(const YAML::Node& node, const Timing& defaults, ProblemList& problems,
              DuplicateKeyChecker& duplicate_keys) {
  const Scope scope{problems, NameForMessages(node)};
  duplicate_keys.Check(node, scope);

  Rule rule;
  rule.mark = problems.ToSourceMark(node.Mark());
  const Entries entries = ReadEntries(node, kRuleKeys, scope);
  RequireKeys(node, entries, {"name", "sql", "metrics"}, scope);

  if (const auto name = ReadString(entries, "name", scope)) {
    if (IsValidRuleName(*name)) {
      rule.name = *name;
    } else {
      scope.Report(FindEntry(entries, "name")->Mark(),
                   fmt::format("invalid rule name \"{}\": use snake_case matching "
                               "[a-z_][a-z0-9_]*",
                               *name));
    }
  }

  const Timing timing = ReadTiming(entries, defaults, scope);
  rule.interval = timing.interval;
  rule.timeout = timing.timeout;

  if (const auto sql = ReadString(entries, "sql", scope)) {
    rule.sql = *sql;
    if (IsBlank(*sql)) {
      scope.Report(FindEntry(entries, "sql")->Mark(),
                   "\"sql\" is empty; write the query whose columns feed the metrics");
    }
  }

  ReadMetrics(entries, rule, scope);
  for (auto& metric : rule.metrics) {
    metric.exported_help = fmt::format("{} (rule {} in {}, refreshed every {})", metric.help,
                                       rule.name, problems.file(), FormatDuration(rule.interval));
  }
  return rule;
}

// Reads the rules of one rule file, reporting every problem in `problems`.
std::vector<Rule> ReadRuleFile(const std::string& text, const Timing& defaults,
                               ProblemList& problems) {
  const auto root = LoadDocument(text, problems);
  if (!root) return {};

  const Scope scope{problems, ""};
  if (root->IsNull()) {
    scope.Report(root->Mark(), "missing required key \"rules\"");
    return {};
  }
  if (!root->IsMap()) {
    scope.Report(root->Mark(), fmt::format("a rule file must be a map with the key \"rules\", but "
                                           "{}",
                                           DescribeNode(*root)));
    return {};
  }

  std::vector<Rule> rules;
  DuplicateKeyChecker duplicate_keys;
  const Entries entries = ReadEntries(*root, kRuleFileKeys, scope);
  RequireKeys(*root, entries, {"rules"}, scope);
  const Entry* list = FindEntry(entries, "rules");
  if (list != nullptr &&
      CheckType(*list, "rules", YAML::NodeType::Sequence, "a list of rules", scope)) {
    for (std::size_t index = 0; index < list->value.size(); ++index) {
      const YAML::Node item = list->value[index];
      if (CheckItemType(item, index, *list, "rules", YAML::NodeType::Map, "a map", scope)) {
        rules.push_back(ReadRule(item, defaults, problems, duplicate_keys));
      }
    }
  }
  // Rules were checked above with their names as context; this covers the rest.
  duplicate_keys.Check(*root, scope);
  return rules;
}

// The first definition of every rule name and metric name seen so far, over all files.
class NameIndex {
 public:
  // Registers the names of `rule`, reporting those already defined.
  void Add(const Rule& rule, ProblemList& problems) {
    if (!rule.name.empty()) {
      const auto [first, inserted] = rules_.emplace(rule.name, rule.mark);
      if (!inserted) {
        problems.Add(
            rule.mark, rule.name,
            fmt::format("duplicate rule name (first defined at {})", FormatMark(first->second)));
      }
    }
    for (const auto& metric : rule.metrics) {
      if (metric.name.empty()) continue;
      const auto [first, inserted] = metrics_.emplace(metric.name, metric.mark);
      if (!inserted) {
        problems.Add(metric.mark, rule.name,
                     fmt::format("duplicate metric \"{}\" (first defined at {})", metric.name,
                                 FormatMark(first->second)));
      }
    }
  }

 private:
  std::map<std::string, SourceMark> rules_;
  std::map<std::string, SourceMark> metrics_;
};

// ---------------------------------------------------------------------------------------
// Main file

// One entry of "rule_files", or the default pattern when the key is absent.
struct RulePattern {
  std::string text;
  std::optional<YAML::Mark> mark;
};

struct MainFile {
  Config config;
  std::vector<RulePattern> patterns;
};

// Returns whether `address` is "host:port", ":port" or "[IPv6 address]:port" with a port
// from 1 to 65535.
bool IsValidListenAddress(const std::string& address) {
  std::string host;
  std::string port;
  if (StartsWith(address, "[")) {
    const auto close = address.find(']');
    if (close == std::string::npos || address.compare(close + 1, 1, ":") != 0) return false;
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
    in6_addr parsed{};
    if (inet_pton(AF_INET6, host.c_str(), &parsed) != 1) return false;
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos) return false;
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    const bool host_ok = std::all_of(host.begin(), host.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_';
    });
    if (!host_ok) return false;
  }

  if (port.empty() || port.size() > 5) return false;
  if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  const int number = std::stoi(port);
  return number >= 1 && number <= 65535;
}

void ReadDatabase(const Entries& root, DatabaseConfig& database, const Scope& scope) {
  const Entry* section = FindEntry(root, "database");
  if (section == nullptr || !CheckType(*section, "database", YAML::NodeType::Map, "a map", scope)) {
    return;
  }
  const Entries entries = ReadEntries(section->value, kDatabaseKeys, scope);

  if (const auto dsn = ReadString(entries, "dsn", scope)) {
    database.dsn = *dsn;
    if (IsBlank(*dsn)) {
      scope.Report(FindEntry(entries, "dsn")->Mark(),
                   "\"dsn\" is empty; remove the key to use the PG* environment variables");
    }
  }

  if (const auto file = ReadString(entries, "password_file", scope)) {
    database.password_file = *file;
    if (IsBlank(*file)) {
      scope.Report(FindEntry(entries, "password_file")->Mark(),
                   "\"password_file\" is empty; remove the key to use PGPASSWORD or PGPASSFILE");
    }
  }

  if (const auto text = ReadString(entries, "max_connections", scope)) {
    const bool digits =
        !text->empty() && text->size() <= 9 &&
        std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; });
    const int number = digits ? std::stoi(*text) : 0;
    if (number >= 1 && number <= kMaxConnectionsLimit) {
      database.max_connections = number;
    } else {
      scope.Report(FindEntry(entries, "max_connections")->Mark(),
                   fmt::format("\"max_connections\" must be an integer from 1 to {}, not \"{}\"",
                               kMaxConnectionsLimit, *text));
    }
  }
}

void ReadWeb(const Entries& root, Config& config, const Scope& scope) {
  const Entry* section = FindEntry(root, "web");
  if (section == nullptr || !CheckType(*section, "web", YAML::NodeType::Map, "a map", scope)) {
    return;
  }
  const Entries entries = ReadEntries(section->value, kWebKeys, scope);

  if (const auto address = ReadString(entries, "listen_address", scope)) {
    if (IsValidListenAddress(*address)) {
      config.listen_address = *address;
    } else {
      scope.Report(FindEntry(entries, "listen_address")->Mark(),
                   fmt::format("invalid listen address \"{}\": use host:port, :port or "
                               "[v6]:port with a port from 1 to 65535",
                               *address));
    }
  }
}

void ReadRulePatterns(const Entries& root, MainFile& main, const Scope& scope) {
  const Entry* entry = FindEntry(root, "rule_files");
  if (entry == nullptr) {
    main.patterns.push_back({kDefaultRulePattern, std::nullopt});
  } else if (CheckType(*entry, "rule_files", YAML::NodeType::Sequence, "a list of glob patterns",
                       scope)) {
    for (std::size_t index = 0; index < entry->value.size(); ++index) {
      const YAML::Node item = entry->value[index];
      if (CheckItemType(item, index, *entry, "rule_files", YAML::NodeType::Scalar, "a glob pattern",
                        scope)) {
        main.patterns.push_back({item.Scalar(), item.Mark()});
      }
    }
  }
  for (const auto& pattern : main.patterns) main.config.rule_file_patterns.push_back(pattern.text);
}

void ReadDefaults(const Entries& root, Config& config, const Scope& scope) {
  const Entry* section = FindEntry(root, "defaults");
  if (section == nullptr || !CheckType(*section, "defaults", YAML::NodeType::Map, "a map", scope)) {
    return;
  }
  const Entries entries = ReadEntries(section->value, kDefaultsKeys, scope);
  const Timing timing =
      ReadTiming(entries, Timing{config.default_interval, config.default_timeout}, scope);
  config.default_interval = timing.interval;
  config.default_timeout = timing.timeout;
}

// Reads the main file. Returns std::nullopt after a YAML syntax problem, because the rule
// files it names are then unknown.
std::optional<MainFile> ReadMainFile(const std::string& text, const std::string& path,
                                     ProblemList& problems) {
  const auto root = LoadDocument(text, problems);
  if (!root) return std::nullopt;

  MainFile main;
  main.config.path = path;
  main.config.listen_address = kDefaultListenAddress;
  const Scope scope{problems, ""};
  if (root->IsNull()) {
    ReadRulePatterns(Entries{}, main, scope);
    return main;
  }
  if (!root->IsMap()) {
    scope.Report(root->Mark(),
                 fmt::format("the configuration file must be a map, but {}", DescribeNode(*root)));
    return main;
  }

  DuplicateKeyChecker duplicate_keys;
  duplicate_keys.Check(*root, scope);
  const Entries entries = ReadEntries(*root, kMainFileKeys, scope);
  ReadDatabase(entries, main.config.database, scope);
  ReadWeb(entries, main.config, scope);
  ReadRulePatterns(entries, main, scope);
  ReadDefaults(entries, main.config, scope);
  return main;
}

// ---------------------------------------------------------------------------------------
// Files

// Reads a whole file. On failure returns std::nullopt and sets `error` to the errno text.
std::optional<std::string> ReadFile(const std::string& path, std::string* error) {
  const auto close = [](std::FILE* opened) { std::fclose(opened); };
  const std::unique_ptr<std::FILE, decltype(close)> file(std::fopen(path.c_str(), "rb"), close);
  if (!file) {
    *error = ErrnoText(errno);
    return std::nullopt;
  }
  std::string text;
  std::array<char, 8192> buffer;
  std::size_t count = 0;
  while ((count = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0) {
    text.append(buffer.data(), count);
  }
  // fopen() succeeds on a directory; the first read then fails with EISDIR.
  if (std::ferror(file.get()) != 0) {
    *error = ErrnoText(errno);
    return std::nullopt;
  }
  return text;
}

// A rule file matched by a pattern: `name` is used in messages, marks and HELP text,
// `path` to open it.
struct RuleFile {
  std::string name;
  std::string path;
};

// glob(3) passes no user data to its error callback, so the errors of the call in
// progress on this thread are collected through this pointer.
thread_local std::vector<std::string>* glob_errors = nullptr;

int RecordGlobError(const char* path, int error) {
  // A directory that does not exist only means that nothing matches there.
  if (error == ENOENT || error == ENOTDIR) return 0;
  if (glob_errors != nullptr) {
    glob_errors->push_back(
        fmt::format("could not read directory \"{}\": {}", path, ErrnoText(error)));
  }
  return 0;  // Keep matching in the other directories.
}

// Returns the paths matching `pattern`, sorted bytewise so that the load order does not
// depend on the locale. Directory errors are appended to `errors`.
std::vector<std::string> Glob(const std::string& pattern, std::vector<std::string>& errors) {
  glob_t matches{};
  glob_errors = &errors;
  const int status = glob(pattern.c_str(), GLOB_NOSORT, &RecordGlobError, &matches);
  glob_errors = nullptr;

  std::vector<std::string> paths;
  if (status == 0) paths.assign(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
  if (status == GLOB_NOSPACE) errors.push_back("out of memory while matching");
  globfree(&matches);
  std::sort(paths.begin(), paths.end());
  return paths;
}

// Escapes the glob metacharacters in a literal path.
std::string EscapeGlob(const std::string& path) {
  std::string escaped;
  for (char c : path) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') escaped += '\\';
    escaped += c;
  }
  return escaped;
}

// Returns a path that identifies a file however it was reached, for loading each once.
std::string CanonicalPath(const std::string& path) {
  const auto release = [](char* resolved_path) { std::free(resolved_path); };
  const std::unique_ptr<char, decltype(release)> resolved(realpath(path.c_str(), nullptr), release);
  return resolved ? std::string(resolved.get()) : path;
}

// Expands the rule file patterns of the main file at `main_path`. Relative patterns are
// taken from the main file's directory, and their matches are named relative to it.
std::vector<RuleFile> ExpandRulePatterns(const MainFile& main, const std::string& main_path,
                                         ProblemList& problems) {
  const auto slash = main_path.rfind('/');
  const std::string directory = slash == std::string::npos ? "" : main_path.substr(0, slash + 1);
  const Scope scope{problems, ""};

  std::vector<RuleFile> files;
  std::set<std::string> seen;
  for (const auto& pattern : main.patterns) {
    const bool relative = !StartsWith(pattern.text, "/");
    const std::string prefix = relative ? directory : "";
    const std::string full_pattern = EscapeGlob(prefix) + pattern.text;
    const auto report = [&](const std::string& text) {
      if (pattern.mark) {
        scope.Report(*pattern.mark, text);
      } else {
        problems.AddForFile(text);
      }
    };

    std::vector<std::string> errors;
    const auto paths = Glob(full_pattern, errors);
    for (const auto& error : errors) {
      report(fmt::format("rule file pattern \"{}\": {}", pattern.text, error));
    }
    if (paths.empty() && errors.empty()) {
      const std::string searched =
          prefix.empty() ? "" : fmt::format(" (searched as \"{}{}\")", prefix, pattern.text);
      report(pattern.mark
                 ? fmt::format("rule file pattern \"{}\" matches no file{}", pattern.text, searched)
                 : fmt::format("default rule file pattern \"{}\" matches no file{}; set "
                               "\"rule_files\" to the rule files to load",
                               pattern.text, searched));
    }

    for (const auto& path : paths) {
      if (!seen.insert(CanonicalPath(path)).second) continue;
      files.push_back({path.substr(prefix.size()), path});
    }
  }
  return files;
}

}  // namespace

std::vector<Rule> ParseRuleFile(const std::string& text, const std::string& file_name,
                                const RuleDefaults& defaults) {
  ProblemList problems(file_name);
  std::vector<Rule> rules =
      ReadRuleFile(text, Timing{defaults.interval, defaults.timeout}, problems);
  NameIndex names;
  for (const auto& rule : rules) names.Add(rule, problems);
  if (!problems.empty()) throw ConfigError(problems.InFileOrder());
  return rules;
}

Config LoadConfig(const std::string& path) {
  std::string error;
  const auto text = ReadFile(path, &error);
  if (!text) {
    throw ConfigError({fmt::format("{}: could not read configuration file: {}", path, error)});
  }

  ProblemList main_problems(path);
  auto main = ReadMainFile(*text, path, main_problems);
  if (!main) throw ConfigError(main_problems.InFileOrder());
  const auto files = ExpandRulePatterns(*main, path, main_problems);
  std::vector<std::string> all_problems = main_problems.InFileOrder();

  Config& config = main->config;
  const Timing defaults{config.default_interval, config.default_timeout};
  NameIndex names;
  for (const auto& file : files) {
    ProblemList problems(file.name);
    if (const auto rule_text = ReadFile(file.path, &error)) {
      for (auto& rule : ReadRuleFile(*rule_text, defaults, problems)) {
        names.Add(rule, problems);
        config.rules.push_back(std::move(rule));
      }
    } else {
      problems.AddForFile(fmt::format("could not read rule file: {}", error));
    }
    config.rule_files.push_back(file.name);
    const auto messages = problems.InFileOrder();
    all_problems.insert(all_problems.end(), messages.begin(), messages.end());
  }

  if (!all_problems.empty()) throw ConfigError(std::move(all_problems));
  return std::move(config);
}

bool ParseDuration(const std::string& text, milliseconds* duration) {
  if (text == "0") {
    *duration = milliseconds(0);
    return true;
  }
  if (text.empty()) return false;

  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  std::int64_t total = 0;
  std::size_t next_unit = 0;  // Units must come in descending order, each at most once.
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::int64_t number = 0;
    const std::size_t digits_start = pos;
    for (; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos) {
      if (number > (kMax - (text[pos] - '0')) / 10) return false;
      number = number * 10 + (text[pos] - '0');
    }
    if (pos == digits_start) return false;

    const std::size_t unit_start = pos;
    while (pos < text.size() && std::isalpha(static_cast<unsigned char>(text[pos])) != 0) ++pos;
    const std::string suffix = text.substr(unit_start, pos - unit_start);
    std::size_t unit = next_unit;
    while (unit < kDurationUnits.size() && suffix != kDurationUnits[unit].suffix) ++unit;
    if (unit == kDurationUnits.size()) return false;

    const std::int64_t factor = kDurationUnits[unit].milliseconds;
    if (number > (kMax - total) / factor) return false;
    total += number * factor;
    next_unit = unit + 1;
  }
  *duration = milliseconds(total);
  return true;
}

std::string FormatDuration(milliseconds duration) {
  if (duration.count() == 0) return "0s";
  if (duration.count() < 0) return "-" + FormatDuration(-duration);

  std::string text;
  std::int64_t rest = duration.count();
  for (const auto& unit : kDurationUnits) {
    if (rest >= unit.milliseconds) {
      text += fmt::format("{}{}", rest / unit.milliseconds, unit.suffix);
      rest %= unit.milliseconds;
    }
  }
  return text;
}

}  // namespace koji_exporter
