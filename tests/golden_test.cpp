// Exposition golden files: map -> register -> serialize, compared byte for byte with
// tests/golden/*.prom. UPDATE_GOLDEN=1 rewrites the files; ctest also runs
// `promtool check metrics` on each of them.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "koji_exporter/exposition.hpp"
#include "koji_exporter/registry.hpp"
#include "koji_exporter/row_mapper.hpp"

namespace koji_exporter {
namespace {

std::string GoldenPath(const std::string& name) {
  return std::string(KOJI_EXPORTER_SOURCE_DIR) + "/tests/golden/" + name;
}

void CheckGolden(const std::string& name, const std::string& actual) {
  const std::string path = GoldenPath(name);
  if (std::getenv("UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path) << actual;
  }
  std::ifstream file(path);
  REQUIRE_MESSAGE(file.good(), "missing golden file " << path << "; run with UPDATE_GOLDEN=1");
  std::stringstream expected;
  expected << file.rdbuf();
  CHECK(actual == expected.str());
}

Rule TaskRule() {
  Rule rule;
  rule.name = "task_counts";
  MetricSpec waiting;
  waiting.name = "koji_waiting_tasks";
  waiting.type = MetricType::kGauge;
  waiting.exported_help =
      "Tasks waiting for a builder (FREE or ASSIGNED) (rule task_counts in queries/tasks.yaml, "
      "refreshed every 30s).";
  waiting.value_column = "waiting";
  waiting.label_columns = {"channel", "method"};
  MetricSpec total;
  total.name = "koji_tasks_total";
  total.type = MetricType::kCounter;
  total.exported_help = "Tasks in the task table.\nSecond line with a \\ backslash.";
  total.value_column = "total";
  total.label_columns = {"channel", "method"};
  total.static_labels = {{"instance_group", "cern"}};
  rule.metrics = {waiting, total};
  return rule;
}

QueryResult TaskRows() {
  return QueryResult{
      {"channel", "method", "waiting", "total"},
      {{"default", "build", "3", "1200"},
       {"default", "buildArch", "0", "98765"},
       {"createrepo", "newRepo", "1", "4"},
       {"image", "createImage \"quoted\"\\path", "2.5", "1e+21"}}};
}

}  // namespace

TEST_SUITE("exposition") {
  TEST_CASE("mapped rule rows match the golden exposition") {
    const MappedResult mapped = MapRows(TaskRule(), TaskRows());
    CheckGolden("mapped_rule.prom", RenderExposition(mapped.families));
  }

  TEST_CASE("registry snapshot with self-metrics matches the golden exposition") {
    const Rule rule = TaskRule();
    Rule failing;
    failing.name = "broken_rule";
    Rule idle;
    idle.name = "never_ran";
    Registry registry({rule, failing, idle}, "1.2.3", "abcdef123456",
                      Logger(LogLevel::kError, LogFormat::kLogfmt, [](const std::string&) {}));

    MappedResult mapped = MapRows(rule, TaskRows());
    RunReport success;
    success.success = true;
    success.duration = std::chrono::milliseconds(250);
    success.finished = std::chrono::system_clock::time_point(std::chrono::seconds(1764800000));
    success.rows = 4;
    success.problems.null_label = 2;
    success.problems.duplicate_series = 1;
    registry.RecordSuccess(rule, std::move(mapped.families), success);

    RunReport failure;
    failure.duration = std::chrono::milliseconds(1500);
    failure.finished = std::chrono::system_clock::time_point(std::chrono::seconds(1764800001));
    failure.failure_reason = "timeout";
    registry.RecordFailure(failing, failure);
    registry.SetDatabaseUp(true);

    CheckGolden("registry_snapshot.prom", registry.Current()->text);
  }

  TEST_CASE("invalid names are rejected with the culprit") {
    prometheus::MetricFamily family;
    family.name = "koji:bad name";
    family.type = prometheus::MetricType::Gauge;
    CHECK_THROWS_WITH_AS(RenderExposition({family}), "invalid metric name \"koji:bad name\"",
                         ExpositionError);

    family.name = "koji_good";
    prometheus::ClientMetric sample;
    sample.label = {{"bad-label", "x"}};
    family.metric = {sample};
    CHECK_THROWS_WITH_AS(RenderExposition({family}),
                         "metric \"koji_good\": invalid label name \"bad-label\"", ExpositionError);
  }

  TEST_CASE("special values are spelled as the text format does") {
    prometheus::MetricFamily family;
    family.name = "koji_odd";
    family.help = "Ends in Nan";
    family.type = prometheus::MetricType::Gauge;
    for (const double value : {std::nan(""), HUGE_VAL, -HUGE_VAL}) {
      prometheus::ClientMetric sample;
      sample.label = {{"value", "x Nan\ny"}};
      sample.gauge.value = value;
      family.metric.push_back(sample);
    }
    CHECK(RenderExposition({family}) ==
          "# HELP koji_odd Ends in Nan\n"
          "# TYPE koji_odd gauge\n"
          "koji_odd{value=\"x Nan\\ny\"} NaN\n"
          "koji_odd{value=\"x Nan\\ny\"} +Inf\n"
          "koji_odd{value=\"x Nan\\ny\"} -Inf\n");
  }

  TEST_CASE("gzip output is a gzip stream") {
    const std::string body(10000, 'k');
    const std::string compressed = GzipCompress(body);
    REQUIRE(compressed.size() > 18);
    CHECK(static_cast<unsigned char>(compressed[0]) == 0x1f);
    CHECK(static_cast<unsigned char>(compressed[1]) == 0x8b);
    CHECK(compressed.size() < body.size() / 10);
  }
}

}  // namespace koji_exporter
