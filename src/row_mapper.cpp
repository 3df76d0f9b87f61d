// Turns query rows into samples, column by column, following each MetricSpec.
#include "koji_exporter/row_mapper.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <unordered_set>

#include <fmt/format.h>

namespace koji_exporter {
namespace {

std::size_t FindColumn(const Rule& rule, const MetricSpec& spec, const QueryResult& result,
                       const std::string& column, const char* role) {
  for (std::size_t i = 0; i < result.columns.size(); ++i) {
    if (result.columns[i] == column) return i;
  }
  throw MappingError(fmt::format(
      "rule \"{}\": metric \"{}\": {} column \"{}\" is not in the query result (columns: {}); "
      "add it to the SELECT list or fix the rule",
      rule.name, spec.name, role, column, fmt::join(result.columns, ", ")));
}

// Column positions of one metric, resolved once per run.
struct ColumnPlan {
  std::size_t value = 0;
  std::vector<std::size_t> labels;
};

ColumnPlan PlanColumns(const Rule& rule, const MetricSpec& spec, const QueryResult& result) {
  ColumnPlan plan;
  plan.value = FindColumn(rule, spec, result, spec.value_column, "value");
  for (const auto& label : spec.label_columns) {
    plan.labels.push_back(FindColumn(rule, spec, result, label, "label"));
  }
  return plan;
}

void NoteProblem(MappedResult& mapped, std::uint64_t& counter, const std::string& text) {
  ++counter;
  if (mapped.first_problem.empty()) mapped.first_problem = text;
}

prometheus::MetricFamily MapMetric(const Rule& rule, const MetricSpec& spec,
                                   const ColumnPlan& plan, const QueryResult& result,
                                   MappedResult& mapped) {
  prometheus::MetricFamily family;
  family.name = spec.name;
  family.help = spec.exported_help;
  family.type = spec.type == MetricType::kCounter ? prometheus::MetricType::Counter
                                                  : prometheus::MetricType::Gauge;

  family.metric.reserve(std::min<std::size_t>(result.rows.size(), rule.max_series));
  // The label values of each sample joined by NUL, which no PostgreSQL text value contains.
  std::unordered_set<std::string> seen_label_sets;
  seen_label_sets.reserve(family.metric.capacity());
  for (std::size_t row_index = 0; row_index < result.rows.size(); ++row_index) {
    const auto& row = result.rows[row_index];
    const std::size_t row_number = row_index + 1;

    if (family.metric.size() >= rule.max_series) {
      NoteProblem(mapped, mapped.problems.series_limit,
                  fmt::format("metric \"{}\": row {}: more than max_series {} samples; raise "
                              "max_series or narrow the query",
                              spec.name, row_number, rule.max_series));
      continue;
    }

    const auto& raw_value = row[plan.value];
    if (!raw_value) {
      NoteProblem(mapped, mapped.problems.null_value,
                  fmt::format("metric \"{}\": row {}: value column \"{}\" is NULL", spec.name,
                              row_number, spec.value_column));
      continue;
    }
    const std::optional<double> value = ParseSampleValue(*raw_value);
    if (!value) {
      NoteProblem(mapped, mapped.problems.invalid_value,
                  fmt::format("metric \"{}\": row {}: value column \"{}\" is not a number: \"{}\"",
                              spec.name, row_number, spec.value_column, *raw_value));
      continue;
    }

    prometheus::ClientMetric sample;
    sample.label.reserve(plan.labels.size() + spec.static_labels.size());
    std::string label_set;
    for (std::size_t i = 0; i < plan.labels.size(); ++i) {
      const auto& raw_label = row[plan.labels[i]];
      if (!raw_label) {
        NoteProblem(mapped, mapped.problems.null_label,
                    fmt::format("metric \"{}\": row {}: label column \"{}\" is NULL", spec.name,
                                row_number, spec.label_columns[i]));
      }
      std::string label_value = raw_label.value_or("");
      if (label_value.size() > kMaxLabelValueBytes) {
        NoteProblem(mapped, mapped.problems.label_truncated,
                    fmt::format("metric \"{}\": row {}: label column \"{}\" is longer than {} "
                                "bytes and was cut",
                                spec.name, row_number, spec.label_columns[i],
                                kMaxLabelValueBytes));
        label_value = TruncateLabelValue(label_value, kMaxLabelValueBytes);
      }
      label_set += label_value;
      label_set += '\0';
      sample.label.push_back({spec.label_columns[i], std::move(label_value)});
    }
    if (!seen_label_sets.insert(std::move(label_set)).second) {
      NoteProblem(mapped, mapped.problems.duplicate_series,
                  fmt::format("metric \"{}\": row {}: repeats the labels of an earlier row",
                              spec.name, row_number));
      continue;
    }
    for (const auto& [name, static_value] : spec.static_labels) {
      sample.label.push_back({name, static_value});
    }

    if (spec.type == MetricType::kCounter) {
      sample.counter.value = *value;
    } else {
      sample.gauge.value = *value;
    }
    family.metric.push_back(std::move(sample));
  }
  return family;
}

}  // namespace

void MappingProblems::Add(const MappingProblems& other) {
  null_label += other.null_label;
  null_value += other.null_value;
  invalid_value += other.invalid_value;
  duplicate_series += other.duplicate_series;
  series_limit += other.series_limit;
  label_truncated += other.label_truncated;
}

std::string TruncateLabelValue(const std::string& value, std::size_t max_bytes) {
  if (value.size() <= max_bytes) return value;
  std::size_t end = max_bytes;
  // Continuation bytes of a UTF-8 character look like 10xxxxxx; back up to a lead byte.
  while (end > 0 && (static_cast<unsigned char>(value[end]) & 0xC0) == 0x80) --end;
  return value.substr(0, end);
}

std::optional<double> ParseSampleValue(const std::string& text) {
  if (text == "t" || text == "true") return 1.0;
  if (text == "f" || text == "false") return 0.0;
  if (text.empty() || std::isspace(static_cast<unsigned char>(text.front()))) {
    return std::nullopt;
  }
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  // ERANGE on underflow still yields the nearest value; on overflow it yields ±HUGE_VAL,
  // which is the infinity PostgreSQL itself would have printed.
  return value;
}

MappedResult MapRows(const Rule& rule, const QueryResult& result) {
  std::vector<ColumnPlan> plans;
  for (const auto& spec : rule.metrics) plans.push_back(PlanColumns(rule, spec, result));

  MappedResult mapped;
  for (std::size_t i = 0; i < rule.metrics.size(); ++i) {
    mapped.families.push_back(MapMetric(rule, rule.metrics[i], plans[i], result, mapped));
  }
  return mapped;
}

}  // namespace koji_exporter
