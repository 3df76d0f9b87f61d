// Row mapping without a database: values, labels, NULLs, bad values and duplicates.
#include <doctest/doctest.h>

#include <cmath>

#include "koji_exporter/row_mapper.hpp"

namespace koji_exporter {
namespace {

using Row = std::vector<std::optional<std::string>>;

Rule HostRule() {
  Rule rule;
  rule.name = "hosts";
  MetricSpec load;
  load.name = "koji_task_load";
  load.type = MetricType::kGauge;
  load.exported_help = "Task load.";
  load.value_column = "task_load";
  load.label_columns = {"host"};
  load.static_labels = {{"site", "cern"}};
  MetricSpec tasks;
  tasks.name = "koji_tasks_total";
  tasks.type = MetricType::kCounter;
  tasks.exported_help = "Tasks.";
  tasks.value_column = "tasks";
  tasks.label_columns = {"host"};
  rule.metrics = {load, tasks};
  return rule;
}

QueryResult Result(std::vector<Row> rows) {
  return QueryResult{{"host", "task_load", "tasks"}, std::move(rows)};
}

std::string LabelValue(const prometheus::ClientMetric& sample, const std::string& name) {
  for (const auto& label : sample.label) {
    if (label.name == name) return label.value;
  }
  return "(absent)";
}

}  // namespace

TEST_SUITE("row_mapper") {
  TEST_CASE("one query feeds several families in rule order") {
    const MappedResult mapped =
        MapRows(HostRule(), Result({{"builder-01", "1.5", "10"}, {"builder-02", "0", "3"}}));

    REQUIRE(mapped.families.size() == 2);
    CHECK(mapped.families[0].name == "koji_task_load");
    CHECK(mapped.families[0].type == prometheus::MetricType::Gauge);
    CHECK(mapped.families[1].name == "koji_tasks_total");
    CHECK(mapped.families[1].type == prometheus::MetricType::Counter);
    REQUIRE(mapped.families[0].metric.size() == 2);
    CHECK(mapped.families[0].metric[0].gauge.value == 1.5);
    CHECK(LabelValue(mapped.families[0].metric[0], "host") == "builder-01");
    CHECK(LabelValue(mapped.families[0].metric[0], "site") == "cern");
    CHECK(mapped.families[1].metric[1].counter.value == 3);
    CHECK_FALSE(mapped.problems.Any());
    CHECK(mapped.first_problem.empty());
  }

  TEST_CASE("booleans map to 1 and 0") {
    const MappedResult mapped = MapRows(HostRule(), Result({{"a", "t", "f"}, {"b", "false", "true"}}));
    CHECK(mapped.families[0].metric[0].gauge.value == 1);
    CHECK(mapped.families[1].metric[0].counter.value == 0);
    CHECK(mapped.families[0].metric[1].gauge.value == 0);
    CHECK(mapped.families[1].metric[1].counter.value == 1);
  }

  TEST_CASE("a NULL label becomes empty and is counted") {
    const MappedResult mapped = MapRows(HostRule(), Result({{std::nullopt, "2", "4"}}));
    REQUIRE(mapped.families[0].metric.size() == 1);
    CHECK(LabelValue(mapped.families[0].metric[0], "host").empty());
    // One NULL label cell affects a sample of each of the two metrics.
    CHECK(mapped.problems.null_label == 2);
    CHECK(mapped.first_problem == "metric \"koji_task_load\": row 1: label column \"host\" is NULL");
  }

  TEST_CASE("a NULL value drops only that sample") {
    const MappedResult mapped =
        MapRows(HostRule(), Result({{"a", std::nullopt, "1"}, {"b", "3", "2"}}));
    REQUIRE(mapped.families[0].metric.size() == 1);
    CHECK(LabelValue(mapped.families[0].metric[0], "host") == "b");
    CHECK(mapped.families[1].metric.size() == 2);
    CHECK(mapped.problems.null_value == 1);
    CHECK(mapped.first_problem ==
          "metric \"koji_task_load\": row 1: value column \"task_load\" is NULL");
  }

  TEST_CASE("a non-numeric value drops the sample") {
    const std::vector<std::string> bad_values = {"abc", "", " 1", "1 ", "1.5x", "0x", "--1"};
    for (const auto& bad : bad_values) {
      CAPTURE(bad);
      const MappedResult mapped = MapRows(HostRule(), Result({{"a", bad, "1"}}));
      CHECK(mapped.families[0].metric.empty());
      CHECK(mapped.problems.invalid_value == 1);
    }
    const MappedResult mapped = MapRows(HostRule(), Result({{"a", "abc", "1"}}));
    CHECK(mapped.first_problem ==
          "metric \"koji_task_load\": row 1: value column \"task_load\" is not a number: \"abc\"");
  }

  TEST_CASE("duplicate label sets keep the first row") {
    const MappedResult mapped =
        MapRows(HostRule(), Result({{"a", "1", "1"}, {"a", "2", "2"}, {"b", "3", "3"}}));
    REQUIRE(mapped.families[0].metric.size() == 2);
    CHECK(mapped.families[0].metric[0].gauge.value == 1);
    CHECK(mapped.families[0].metric[1].gauge.value == 3);
    CHECK(mapped.problems.duplicate_series == 2);
    CHECK(mapped.first_problem ==
          "metric \"koji_task_load\": row 2: repeats the labels of an earlier row");
  }

  TEST_CASE("label sets that join to the same text are different series") {
    Rule rule;
    rule.name = "tag_packages";
    MetricSpec packages;
    packages.name = "koji_packages";
    packages.type = MetricType::kGauge;
    packages.exported_help = "Packages.";
    packages.value_column = "packages";
    packages.label_columns = {"tag", "package"};
    rule.metrics = {packages};
    const QueryResult result{{"tag", "package", "packages"},
                             {{"f4", "2-build", "1"}, {"f42", "-build", "2"}, {"f42-", "build", "3"}}};

    const MappedResult mapped = MapRows(rule, result);
    CHECK(mapped.families[0].metric.size() == 3);
    CHECK(mapped.problems.duplicate_series == 0);
  }

  TEST_CASE("a NULL label and an empty label are the same series") {
    const MappedResult mapped =
        MapRows(HostRule(), Result({{"", "1", "1"}, {std::nullopt, "2", "2"}}));
    CHECK(mapped.families[0].metric.size() == 1);
    CHECK(mapped.problems.duplicate_series == 2);
    CHECK(mapped.problems.null_label == 2);
  }

  TEST_CASE("a missing column fails the whole run") {
    QueryResult result{{"host", "tasks"}, {{"a", "1"}}};
    CHECK_THROWS_WITH_AS(MapRows(HostRule(), result),
                         "rule \"hosts\": metric \"koji_task_load\": value column \"task_load\" is "
                         "not in the query result (columns: host, tasks); add it to the SELECT "
                         "list or fix the rule",
                         MappingError);
  }

  TEST_CASE("an empty result gives empty families") {
    const MappedResult mapped = MapRows(HostRule(), Result({}));
    REQUIRE(mapped.families.size() == 2);
    CHECK(mapped.families[0].metric.empty());
    CHECK(mapped.families[0].help == "Task load.");
  }
}

TEST_SUITE("row_mapper") {
  TEST_CASE("rows beyond max_series are dropped and counted") {
    Rule rule = HostRule();
    rule.max_series = 2;
    const MappedResult mapped =
        MapRows(rule, Result({{"a", "1", "1"}, {"b", "2", "2"}, {"c", "3", "3"}, {"d", "4", "4"}}));
    CHECK(mapped.families[0].metric.size() == 2);
    CHECK(mapped.families[1].metric.size() == 2);
    // Two rows over the limit, for each of the two metrics.
    CHECK(mapped.problems.series_limit == 4);
    CHECK(mapped.first_problem ==
          "metric \"koji_task_load\": row 3: more than max_series 2 samples; raise max_series "
          "or narrow the query");
  }

  TEST_CASE("long label values are cut and counted") {
    const std::string long_value(kMaxLabelValueBytes + 10, 'x');
    const MappedResult mapped = MapRows(HostRule(), Result({{long_value, "1", "1"}}));
    REQUIRE(mapped.families[0].metric.size() == 1);
    CHECK(LabelValue(mapped.families[0].metric[0], "host").size() == kMaxLabelValueBytes);
    CHECK(mapped.problems.label_truncated == 2);
  }

  TEST_CASE("label values are cut between utf-8 characters") {
    // "aébc" is the bytes a, C3 A9, b, c. Three bytes keep "aé" whole; two would split
    // "é", so the cut backs up to "a".
    CHECK(TruncateLabelValue("a\xC3\xA9" "bc", 3) == "a\xC3\xA9");
    CHECK(TruncateLabelValue("a\xC3\xA9" "bc", 2) == "a");
    CHECK(TruncateLabelValue("short", 10) == "short");
  }
}

TEST_SUITE("row_mapper") {
  TEST_CASE("sample values parse as PostgreSQL prints them") {
    CHECK(ParseSampleValue("42") == 42.0);
    CHECK(ParseSampleValue("-1.25") == -1.25);
    CHECK(ParseSampleValue("1733333333.123456") == doctest::Approx(1733333333.123456));
    CHECK(ParseSampleValue("1e3") == 1000.0);
    CHECK(ParseSampleValue("12345678901234567890") == 12345678901234567890.0);
    CHECK(std::isinf(*ParseSampleValue("Infinity")));
    CHECK(*ParseSampleValue("-Infinity") < 0);
    CHECK(std::isnan(*ParseSampleValue("NaN")));
    CHECK_FALSE(ParseSampleValue("t1").has_value());
    CHECK_FALSE(ParseSampleValue("yes").has_value());
  }
}

}  // namespace koji_exporter
