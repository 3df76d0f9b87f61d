// Reads one rule file: its rules, their metrics and labels, and the Prometheus naming checks
// on them. The main configuration file and names repeated across files belong to rule_loader.cpp.
#include "rule_file.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config_yaml.hpp"
#include "duration.hpp"
#include "incremental_file.hpp"
#include "koji_exporter/names.hpp"
#include "koji_exporter/rule_loader.hpp"
#include "sql_words.hpp"

namespace koji_exporter::detail {

namespace {

constexpr char kSelfMetricPrefix[] = "koji_exporter_";
constexpr char kTotalSuffix[] = "_total";

// The keys allowed in each mapping, in the order that "unknown key" messages list them.
constexpr std::array<const char*, 1> kRuleFileKeys = {"rules"};
constexpr std::array<const char*, 8> kRuleKeys = {
    "name", "interval", "timeout", "stale_after", "max_series", "incremental", "sql", "metrics"};

// Upper bound of max_series: beyond it one rule alone would overwhelm most Prometheus servers.
constexpr std::size_t kMaxSeriesLimit = 10000000;
constexpr std::array<const char*, 6> kMetricKeys = {"name",  "type",   "help",
                                                    "value", "labels", "static_labels"};

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

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string Trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
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

// Returns the first word of `sql` in upper case, after white space, comments (`--` and
// nested `/* */`) and opening parentheses; empty if there is none.
std::string LeadingKeyword(const std::string& sql) {
  std::size_t at = 0;
  while (at < sql.size()) {
    if (std::isspace(static_cast<unsigned char>(sql[at])) || sql[at] == '(') {
      ++at;
    } else if (sql.compare(at, 2, "--") == 0) {
      at = sql.find('\n', at);
      if (at == std::string::npos) return "";
    } else if (sql.compare(at, 2, "/*") == 0) {
      at = SkipBlockComment(sql, at);
    } else {
      break;
    }
  }
  std::string keyword;
  while (at < sql.size() && std::isalpha(static_cast<unsigned char>(sql[at]))) {
    keyword += static_cast<char>(std::toupper(static_cast<unsigned char>(sql[at])));
    ++at;
  }
  return keyword;
}

// Reports SQL that is not a query. The transaction is READ ONLY anyway, but COPY, SET and
// friends are allowed there, and COPY ... TO PROGRAM would run a program on the server.
void CheckQueryKind(const std::string& sql, const YAML::Mark& mark, const Scope& scope) {
  const std::string keyword = LeadingKeyword(sql);
  for (const char* allowed : {"SELECT", "WITH", "VALUES", "TABLE"}) {
    if (keyword == allowed) return;
  }
  scope.Report(mark, fmt::format("\"sql\" must be one read-only query starting with SELECT, "
                                 "WITH, VALUES or TABLE, not \"{}\"",
                                 keyword.empty() ? sql.substr(0, 20) : keyword));
}

// Reads "stale_after" (at least one interval; kDefaultStaleIntervals intervals when
// absent) and "max_series" (1 to kMaxSeriesLimit).
void ReadLimits(const Entries& entries, Rule& rule, const Scope& scope) {
  rule.stale_after = kDefaultStaleIntervals * rule.interval;
  // An interval that was reported as invalid was replaced by the default, which the
  // message below would name as if the file had set it.
  const Entry* interval = FindEntry(entries, "interval");
  std::chrono::milliseconds parsed{0};
  const bool interval_usable = interval == nullptr || (interval->value.IsScalar() &&
                                                       ParseDuration(interval->value.Scalar(),
                                                                     &parsed) &&
                                                       parsed.count() > 0);
  if (const auto stale_after = ReadDuration(entries, "stale_after", scope)) {
    if (interval_usable && *stale_after < rule.interval) {
      scope.Report(FindEntry(entries, "stale_after")->Mark(),
                   fmt::format("stale_after \"{}\" must not be shorter than interval \"{}\"",
                               FormatDuration(*stale_after), FormatDuration(rule.interval)));
    } else {
      rule.stale_after = *stale_after;
    }
  }

  if (const auto text = ReadString(entries, "max_series", scope)) {
    const bool digits = !text->empty() && text->size() <= 9 &&
                        text->find_first_not_of("0123456789") == std::string::npos;
    const std::size_t number = digits ? std::stoul(*text) : 0;
    if (number < 1 || number > kMaxSeriesLimit) {
      scope.Report(FindEntry(entries, "max_series")->Mark(),
                   fmt::format("\"max_series\" must be an integer from 1 to {}, not \"{}\"",
                               kMaxSeriesLimit, *text));
    } else {
      rule.max_series = number;
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
  ReadLimits(entries, rule, scope);

  if (const auto sql = ReadString(entries, "sql", scope)) {
    rule.sql = *sql;
    if (IsBlank(*sql)) {
      scope.Report(FindEntry(entries, "sql")->Mark(),
                   "\"sql\" is empty; write the query whose columns feed the metrics");
    } else {
      CheckQueryKind(*sql, FindEntry(entries, "sql")->Mark(), scope);
    }
  }

  ReadIncremental(entries, rule, scope);
  ReadMetrics(entries, rule, scope);
  CheckIncrementalLabels(rule, scope);
  if (const Entry* sql = FindEntry(entries, "sql")) CheckIncrementalQuery(rule, sql->Mark(), scope);
  for (auto& metric : rule.metrics) {
    metric.exported_help = fmt::format("{} (rule {} in {}, refreshed every {})", metric.help,
                                       rule.name, problems.file(), FormatDuration(rule.interval));
  }
  return rule;
}

}  // namespace

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

}  // namespace koji_exporter::detail
