#include "incremental_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string>
#include <utility>

#include "duration.hpp"
#include "sql_words.hpp"
#include "koji_exporter/names.hpp"

namespace koji_exporter::detail {
namespace {

constexpr std::array<const char*, 4> kIncrementalKeys = {"key", "open", "reorder_window",
                                                         "seed_timeout"};

}  // namespace

void ReadIncremental(const Entries& entries, Rule& rule, const Scope& scope) {
  const Entry* entry = FindEntry(entries, "incremental");
  if (entry == nullptr) return;
  if (!CheckType(*entry, "incremental", YAML::NodeType::Map,
                 "a map with the keys \"key\" and \"open\"", scope)) {
    return;
  }

  IncrementalSpec spec;
  const Entries fields = ReadEntries(entry->value, kIncrementalKeys, scope);
  RequireKeys(entry->value, fields, {"key", "open"}, scope);
  for (const auto& [key, column] : {std::pair{"key", &spec.key_column},
                                    std::pair{"open", &spec.open_column}}) {
    const auto name = ReadString(fields, key, scope);
    if (!name) continue;
    if (IsValidLabelName(*name)) {
      *column = *name;
    } else {
      scope.Report(FindEntry(fields, key)->Mark(),
                   fmt::format("invalid column name \"{}\" in \"incremental.{}\": name a result "
                               "column of letters, digits and underscores",
                               *name, key));
    }
  }
  if (const auto window = ReadDuration(fields, "reorder_window", scope)) {
    spec.reorder_window = *window;
  }
  if (const auto timeout = ReadDuration(fields, "seed_timeout", scope)) {
    spec.seed_timeout = *timeout;
  }
  rule.incremental = spec;
}

void CheckIncrementalLabels(const Rule& rule, const Scope& scope) {
  if (!rule.incremental || rule.metrics.empty()) return;
  const auto sorted = [](std::vector<std::string> labels) {
    std::sort(labels.begin(), labels.end());
    return labels;
  };
  const auto expected = sorted(rule.metrics.front().label_columns);
  for (const auto& metric : rule.metrics) {
    if (sorted(metric.label_columns) == expected) continue;
    scope.problems.Add(
        metric.mark, scope.rule,
        fmt::format("metric \"{}\" has the labels [{}] but \"{}\" has [{}]: every metric of an "
                    "incremental rule must use the same label columns",
                    metric.name, fmt::join(metric.label_columns, ", "),
                    rule.metrics.front().name,
                    fmt::join(rule.metrics.front().label_columns, ", ")));
  }
}

void CheckIncrementalQuery(const Rule& rule, const YAML::Mark& sql_mark, const Scope& scope) {
  if (!rule.incremental) return;
  const std::vector<std::string> words = TopLevelWords(rule.sql);
  std::vector<std::string> clauses;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const bool followed_by_by = i + 1 < words.size() && words[i + 1] == "BY";
    if ((words[i] == "GROUP" || words[i] == "ORDER") && followed_by_by) {
      clauses.push_back(words[i] + " BY");
    } else if (words[i] == "HAVING" || words[i] == "LIMIT" || words[i] == "OFFSET" ||
               words[i] == "FETCH") {
      clauses.push_back(words[i]);
    }
  }
  if (clauses.empty()) return;
  scope.Report(sql_mark,
               fmt::format("the \"sql\" of an incremental rule must return one row per key, "
                           "but its outermost query has {}: remove it, because the exporter "
                           "sums the rows itself",
                           fmt::join(clauses, ", ")));
}

}  // namespace koji_exporter::detail
