// The scheduler against a real PostgreSQL: a slow rule occupies one session while the
// other rules keep running on the rest, and a rule's failure keeps its last good values.
#include <doctest/doctest.h>

#include <chrono>
#include <mutex>
#include <regex>
#include <thread>

#include "db/test_database.hpp"
#include "koji_exporter/scheduler.hpp"

namespace koji_exporter {
namespace {

using std::chrono::milliseconds;

Rule GaugeRule(const std::string& name, const std::string& sql, milliseconds interval,
               milliseconds timeout, milliseconds stale_after = std::chrono::hours(1)) {
  Rule rule;
  rule.name = name;
  rule.sql = sql;
  rule.interval = interval;
  rule.timeout = timeout;
  rule.stale_after = stale_after;
  MetricSpec metric;
  metric.name = "test_" + name;
  metric.exported_help = "Test gauge.";
  metric.value_column = "value";
  rule.metrics = {metric};
  return rule;
}

// Returns the value of `series` in the registry's exposition, or -1 when it is absent.
double SeriesValue(const Registry& registry, const std::string& series) {
  const std::string text = registry.Current()->text;
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

// Polls every 50 ms, at most `attempts` times, until `series` reaches `minimum`.
double WaitForValue(const Registry& registry, const std::string& series, double minimum,
                    int attempts = 400) {
  double value = -1;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    value = SeriesValue(registry, series);
    if (value >= minimum) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return value;
}

Logger QuietLogger() {
  return Logger(LogLevel::kError, LogFormat::kLogfmt, [](const std::string&) {});
}

}  // namespace

TEST_SUITE("scheduler") {
  TEST_CASE("a slow rule does not hold up the others") {
    testing::TestDatabase database;
    const std::vector<Rule> rules = {
        GaugeRule("slow", "SELECT pg_sleep(30) AS slept, 1 AS value", milliseconds(60000),
                  milliseconds(2000)),
        GaugeRule("fast", "SELECT 7 AS value", milliseconds(100), milliseconds(90)),
    };
    Registry registry(rules, "test", "test", QuietLogger());
    Scheduler scheduler(rules, 2, database.Conninfo(), registry, QuietLogger());
    scheduler.Start();

    // The slow rule occupies its session until its 2 s statement timeout; meanwhile the fast
    // rule, due every 100 ms, runs on the other session many times over.
    CHECK(WaitForValue(registry, "koji_exporter_query_errors_total{query=\"slow\"}", 1) == 1);
    CHECK(SeriesValue(registry, "koji_exporter_query_runs_total{query=\"fast\"}") >= 3);
    CHECK(SeriesValue(registry, "koji_exporter_query_errors_total{query=\"fast\"}") == 0);
    CHECK(SeriesValue(registry, "test_fast") == 7);
    scheduler.Stop();
  }

  TEST_CASE("a failing rule keeps its last good values") {
    testing::TestDatabase database;
    database.Execute("CREATE TABLE reading (value int); INSERT INTO reading VALUES (42)");
    const std::vector<Rule> rules = {
        GaugeRule("reading", "SELECT value FROM reading", milliseconds(100), milliseconds(90)),
    };
    Registry registry(rules, "test", "test", QuietLogger());
    Scheduler scheduler(rules, 1, database.Conninfo(), registry, QuietLogger());
    scheduler.Start();
    REQUIRE(WaitForValue(registry, "test_reading", 42) == 42);

    database.Execute("DROP TABLE reading");
    CHECK(WaitForValue(registry, "koji_exporter_query_errors_total{query=\"reading\"}", 1) >= 1);
    CHECK(SeriesValue(registry, "koji_exporter_query_last_run_success{query=\"reading\"}") == 0);
    CHECK(SeriesValue(registry, "test_reading") == 42);
    scheduler.Stop();
  }

  TEST_CASE("a killed session is a connection failure but no outage") {
    testing::TestDatabase database;
    const Rule rule = GaugeRule("reading", "SELECT 1 AS value", milliseconds(1000),
                                milliseconds(500));
    Registry registry({rule}, "test", "test", QuietLogger());
    QueryRunner runner(database.Conninfo() + " application_name=killed_runner");
    REQUIRE(ExecuteRule(runner, rule, registry, QuietLogger()).success);

    database.Execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'killed_runner'");
    const RunReport report = ExecuteRule(runner, rule, registry, QuietLogger());
    CHECK_FALSE(report.success);
    CHECK(report.failure_reason == "connection");
    CHECK(SeriesValue(registry, "koji_exporter_database_up") == 1);
    CHECK(SeriesValue(registry,
                      "koji_exporter_query_failures_total{query=\"reading\",reason=\"connection\"}") ==
          1);

    // An unreachable server is an outage.
    QueryRunner unreachable("host=/nonexistent/socket/dir port=1 connect_timeout=2");
    CHECK_FALSE(ExecuteRule(unreachable, rule, registry, QuietLogger()).success);
    CHECK(SeriesValue(registry, "koji_exporter_database_up") == 0);
  }

  TEST_CASE("a broken rule backs off and a cut session retries soon") {
    testing::TestDatabase database;
    std::mutex lines_mutex;
    std::vector<std::string> lines;
    const Logger logger(LogLevel::kDebug, LogFormat::kLogfmt, [&](const std::string& line) {
      std::lock_guard<std::mutex> lock(lines_mutex);
      lines.push_back(line);
    });
    const std::vector<Rule> rules = {
        GaugeRule("broken", "SELECT value FROM no_such_table", milliseconds(100),
                  milliseconds(90)),
    };
    Registry registry(rules, "test", "test", QuietLogger());
    Scheduler scheduler(rules, 1, database.Conninfo(), registry, logger);
    scheduler.Start();
    WaitForValue(registry, "koji_exporter_query_errors_total{query=\"broken\"}", 3);
    scheduler.Stop();

    // A missing table needs a person: the delay doubles from the 100 ms interval, with up
    // to 10% jitter either way.
    std::vector<double> delays;
    const std::regex retry("retry_in_seconds=([0-9.]+)");
    for (const auto& line : lines) {
      std::smatch match;
      if (std::regex_search(line, match, retry)) delays.push_back(std::stod(match[1]));
    }
    REQUIRE(delays.size() >= 3);
    CHECK(delays[0] == doctest::Approx(0.1).epsilon(0.11));
    CHECK(delays[1] == doctest::Approx(0.2).epsilon(0.11));
    CHECK(delays[2] == doctest::Approx(0.4).epsilon(0.11));
  }

  TEST_CASE("stale values are dropped and come back") {
    testing::TestDatabase database;
    database.Execute("CREATE TABLE reading (value int); INSERT INTO reading VALUES (42)");
    const std::vector<Rule> rules = {
        GaugeRule("reading", "SELECT value FROM reading", milliseconds(100), milliseconds(90),
                  milliseconds(500)),
    };
    Registry registry(rules, "test", "test", QuietLogger());
    Scheduler scheduler(rules, 1, database.Conninfo(), registry, QuietLogger());
    scheduler.Start();
    REQUIRE(WaitForValue(registry, "test_reading", 42) == 42);

    // Runs fail every 100 ms; once 500 ms have passed since the last success, the series
    // goes, while the success timestamp stays and tells when the value was last good.
    database.Execute("ALTER TABLE reading RENAME TO reading_moved");
    for (int attempt = 0; attempt < 200 && SeriesValue(registry, "test_reading") != -1;
         ++attempt) {
      std::this_thread::sleep_for(milliseconds(50));
    }
    CHECK(SeriesValue(registry, "test_reading") == -1);
    CHECK(SeriesValue(registry,
                      "koji_exporter_query_last_success_timestamp_seconds{query=\"reading\"}") > 0);
    CHECK(SeriesValue(registry, "koji_exporter_query_errors_total{query=\"reading\"}") >= 3);

    database.Execute("ALTER TABLE reading_moved RENAME TO reading");
    CHECK(WaitForValue(registry, "test_reading", 42) == 42);
    scheduler.Stop();
  }
}

}  // namespace koji_exporter
