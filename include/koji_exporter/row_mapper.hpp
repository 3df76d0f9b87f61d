// Maps the rows of one rule run to metric families. It deals with the rule model and the
// documented handling of odd rows, not PostgreSQL or HTTP.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "koji_exporter/rule.hpp"

namespace koji_exporter {

/// Rows of one query in text form, as PostgreSQL returns them; std::nullopt is NULL.
struct QueryResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
};

/// Odd values met while mapping one run. Each is counted once per affected sample:
/// - null_label: a label column is NULL; the label gets the empty value, which Prometheus
///   treats as an absent label, and the sample is kept;
/// - null_value: the value column is NULL; the sample is dropped;
/// - invalid_value: the value is neither a number nor a boolean; the sample is dropped;
/// - duplicate_series: a later row repeats a label set; the first row wins;
/// - series_limit: a row beyond the rule's max_series samples for the metric; dropped;
/// - label_truncated: a label value longer than kMaxLabelValueBytes; cut to that length.
struct MappingProblems {
  std::uint64_t null_label = 0;
  std::uint64_t null_value = 0;
  std::uint64_t invalid_value = 0;
  std::uint64_t duplicate_series = 0;
  std::uint64_t series_limit = 0;
  std::uint64_t label_truncated = 0;

  bool Any() const {
    return null_label + null_value + invalid_value + duplicate_series + series_limit +
               label_truncated >
           0;
  }
  /// Adds the counts of `other` to these.
  void Add(const MappingProblems& other);
};

/// Metric families of one run, one per MetricSpec in rule order, and what was odd.
struct MappedResult {
  std::vector<prometheus::MetricFamily> families;
  MappingProblems problems;
  /// The first odd value met, e.g. `metric "m": row 3: value column "v" is NULL`; empty
  /// when there were none. Logged once per run so operators can find the row.
  std::string first_problem;
};

/// Raised when a result cannot feed the rule's metrics at all, e.g. a value or label
/// column that the query did not return.
class MappingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Cuts `value` to at most `max_bytes` bytes without splitting a UTF-8 character.
std::string TruncateLabelValue(const std::string& value, std::size_t max_bytes);

/// Parses a PostgreSQL value as a sample value: any number strtod accepts in full
/// (including NaN and Infinity) or a boolean `t`/`f`/`true`/`false` as 1/0.
std::optional<double> ParseSampleValue(const std::string& text);

/// Maps `result` to the families of `rule`. Throws MappingError if a column is missing.
MappedResult MapRows(const Rule& rule, const QueryResult& result);

}  // namespace koji_exporter
