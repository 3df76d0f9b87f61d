// The koji_exporter binary end to end: configuration check, scheduled rules against a
// real database, /metrics, /healthz, failure isolation, secrets and shutdown.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "db/exporter_process.hpp"
#include "db/test_database.hpp"
#include "support/trickling_client.hpp"

namespace koji_exporter {
namespace {

using testing::ExporterProcess;
using testing::RunExporter;
using testing::TempDir;
using testing::TestDatabase;
using testing::TricklingClient;

constexpr const char* kRules = R"(rules:
  - name: builders
    interval: 1s
    timeout: 500ms
    sql: SELECT name AS host, task_load FROM builder ORDER BY name
    metrics:
      - name: test_builder_task_load
        type: gauge
        help: Task load of each builder.
        value: task_load
        labels: [host]
  - name: missing_table
    interval: 1s
    timeout: 500ms
    sql: SELECT 1 AS value FROM no_such_table
    metrics:
      - name: test_never_filled
        type: gauge
        help: Never filled, because the table does not exist.
        value: value
)";

// Main file for `database`; the password is there only to prove it never leaks, since
// the throwaway cluster trusts local connections.
std::string MainFile(const TestDatabase& database) {
  return fmt::format(R"(database:
  dsn: "{} password=hunter2-secret"
rule_files: ["rules/*.yaml"]
)",
                     database.Conninfo());
}

}  // namespace

TEST_SUITE("exporter end to end") {
  TEST_CASE("config check accepts a valid configuration") {
    TestDatabase database;
    TempDir directory;
    directory.Write("rules/test.yaml", kRules);
    const std::string config = directory.Write("koji_exporter.yaml", MainFile(database));

    const auto result = RunExporter({"--config.file=" + config, "--config.check"});
    CHECK(result.exit_code == 0);
    CHECK(result.output == config + ": ok (1 rule files, 2 rules, 2 metrics)\n");
  }

  TEST_CASE("config check reports every problem and exits 1") {
    TempDir directory;
    directory.Write("rules/bad.yaml", R"(rules:
  - name: bad
    sql: SELECT 1 AS v
    metrics:
      - name: test_bad
        type: counter
        help: x
        value: v
        lables: [host]
)");
    const std::string config =
        directory.Write("koji_exporter.yaml", "rule_files: [\"rules/*.yaml\"]\n");
    const auto result = RunExporter({"--config.file=" + config, "--config.check"});
    CHECK(result.exit_code == 1);
    CHECK(result.output.find("bad.yaml:5:") != std::string::npos);
    CHECK(result.output.find("must end in \"_total\"") != std::string::npos);
    CHECK(result.output.find("unknown key \"lables\"") != std::string::npos);
  }

  TEST_CASE("config check catches an unusable dsn or password file") {
    TempDir directory;
    directory.Write("rules/test.yaml", kRules);
    const std::string bad_dsn = directory.Write(
        "bad_dsn.yaml", "database:\n  dsn: \"hostt=replica\"\nrule_files: [\"rules/*.yaml\"]\n");
    auto result = RunExporter({"--config.file=" + bad_dsn, "--config.check"});
    CHECK(result.exit_code == 1);
    CHECK(result.output.find(bad_dsn + ": database: invalid database dsn: invalid connection "
                                       "option \"hostt\"") != std::string::npos);

    const std::string missing_password = directory.Write(
        "missing_password.yaml",
        "database:\n  dsn: \"host=replica\"\n  password_file: /nonexistent/password\n"
        "rule_files: [\"rules/*.yaml\"]\n");
    result = RunExporter({"--config.file=" + missing_password, "--config.check"});
    CHECK(result.exit_code == 1);
    CHECK(result.output.find(missing_password +
                             ": database: cannot read password file \"/nonexistent/password\": "
                             "No such file or directory") != std::string::npos);
  }

  TEST_CASE("unknown flags exit 2 with a hint") {
    const auto result = RunExporter({"--no-such-flag"});
    CHECK(result.exit_code == 2);
    CHECK(
        result.output ==
        "koji_exporter: unknown flag \"--no-such-flag\"\nrun koji_exporter --help for the flags\n");
  }

  TEST_CASE("rules are served and a failing rule does not block the others") {
    TestDatabase database;
    database.Execute(
        "CREATE TABLE builder (name text, task_load float8);"
        "INSERT INTO builder VALUES ('builder-01', 1.5), ('builder-02', 0)");
    TempDir directory;
    directory.Write("rules/test.yaml", kRules);
    ExporterProcess exporter(directory.Write("koji_exporter.yaml", MainFile(database)));

    // The two rules run side by side, so either may finish first.
    exporter.WaitForMetric("koji_exporter_query_errors_total{query=\"missing_table\"} 1");
    std::string metrics =
        exporter.WaitForMetric("koji_exporter_query_last_run_success{query=\"builders\"} 1\n");
    CHECK(metrics.find("test_builder_task_load{host=\"builder-01\"} 1.5\n") != std::string::npos);
    CHECK(metrics.find("test_builder_task_load{host=\"builder-02\"} 0\n") != std::string::npos);
    CHECK(metrics.find("koji_exporter_query_last_run_success{query=\"builders\"} 1\n") !=
          std::string::npos);
    CHECK(metrics.find("koji_exporter_query_last_run_success{query=\"missing_table\"} 0\n") !=
          std::string::npos);
    CHECK(metrics.find("koji_exporter_database_up 1\n") != std::string::npos);
    CHECK(metrics.find("# HELP test_builder_task_load Task load of each builder. (rule builders") !=
          std::string::npos);
    CHECK(metrics.find("test_never_filled{") == std::string::npos);
    // The failing rule may have run again meanwhile.
    const std::string failures =
        "\nkoji_exporter_query_failures_total{query=\"missing_table\",reason=\"sql\"} ";
    const auto at = metrics.find(failures);
    REQUIRE(at != std::string::npos);
    CHECK(std::stod(metrics.substr(at + failures.size())) >= 1);
    CHECK(
        metrics.find("koji_exporter_query_failures_total{query=\"builders\",reason=\"sql\"} 0\n") !=
        std::string::npos);

    // New rows show up at a later run.
    database.Execute("UPDATE builder SET task_load = 4 WHERE name = 'builder-02'");
    metrics = exporter.WaitForMetric("test_builder_task_load{host=\"builder-02\"} 4\n");
    CHECK(metrics.find("test_builder_task_load{host=\"builder-02\"} 4\n") != std::string::npos);

    int status = 0;
    CHECK(exporter.Get("/healthz", &status) == "ok\n");
    CHECK(status == 200);

    const std::string log = exporter.Log();
    CHECK(log.find("msg=\"rule failed\"") != std::string::npos);
    CHECK(log.find("rule=missing_table") != std::string::npos);
    CHECK(log.find("sqlstate=42P01") != std::string::npos);

    CHECK(exporter.Stop(SIGTERM) == 0);
    CHECK(exporter.Log().find("msg=stopped") != std::string::npos);
  }

  TEST_CASE("the password never appears in logs, metrics or pages") {
    TestDatabase database;
    database.Execute("CREATE TABLE builder (name text, task_load float8)");
    TempDir directory;
    directory.Write("rules/test.yaml", kRules);
    ExporterProcess exporter(directory.Write("koji_exporter.yaml", MainFile(database)),
                             {"--log.level=debug"});
    const std::string metrics =
        exporter.WaitForMetric("koji_exporter_query_runs_total{query=\"missing_table\"} 1");
    const std::string landing = exporter.Get("/");
    CHECK(exporter.Stop(SIGINT) == 0);

    const std::string log = exporter.Log();
    CHECK(log.find("password='********'") != std::string::npos);
    for (const std::string& output : {metrics, landing, log}) {
      CHECK(output.find("hunter2") == std::string::npos);
    }
  }

  TEST_CASE("an unreachable database sets database_up to 0 and keeps serving") {
    TempDir directory;
    directory.Write("rules/test.yaml", kRules);
    const std::string config = directory.Write(
        "koji_exporter.yaml",
        "database:\n  dsn: \"host=/nonexistent/socket/dir port=1 dbname=koji connect_timeout=1\"\n"
        "rule_files: [\"rules/*.yaml\"]\n");
    ExporterProcess exporter(config);
    // Three failed runs of each rule, but the outage is logged once.
    const std::string metrics =
        exporter.WaitForMetric("koji_exporter_query_errors_total{query=\"builders\"} 3");
    CHECK(metrics.find("koji_exporter_query_errors_total{query=\"builders\"} 3") !=
          std::string::npos);
    CHECK(metrics.find("koji_exporter_database_up 0\n") != std::string::npos);
    CHECK(metrics.find(
              "koji_exporter_query_failures_total{query=\"builders\",reason=\"connection\"} 3") !=
          std::string::npos);
    const std::string log = exporter.Log();
    const auto first = log.find("msg=\"database unreachable;");
    CHECK(first != std::string::npos);
    CHECK(log.find("msg=\"database unreachable;", first + 1) == std::string::npos);
    CHECK(metrics.find("koji_exporter_query_last_run_success{query=\"builders\"} 0\n") !=
          std::string::npos);
    CHECK(exporter.Log().find("reason=connection") != std::string::npos);
    CHECK(exporter.Stop(SIGTERM) == 0);
  }

  TEST_CASE("default rules on sample data pass promtool") {
    TestDatabase database(
        {"tests/fixtures/koji_schema.sql", "tests/fixtures/koji_sample_data.sql"});
    TempDir directory;
    const std::string config = directory.Write(
        "koji_exporter.yaml",
        fmt::format("database:\n  dsn: \"{}\"\nrule_files: [\"{}/queries/*.yaml\"]\n",
                    database.Conninfo(), KOJI_EXPORTER_SOURCE_DIR));
    ExporterProcess exporter(config);

    // Every default rule runs once within 10 s of the start; wait (at most 30 s) until the
    // last has reported.
    std::string metrics;
    for (int attempt = 0; attempt < 300; ++attempt) {
      metrics = exporter.WaitForMetric("koji_exporter_query_last_run_success{", 1);
      std::size_t successes = 0;
      for (auto at = metrics.find("koji_exporter_query_last_run_success{"); at != std::string::npos;
           at = metrics.find("koji_exporter_query_last_run_success{", at + 1)) {
        ++successes;
      }
      if (successes == 10) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(metrics.find("} 0\nkoji_exporter_query_last_run_success") == std::string::npos);
    for (const char* metric :
         {"koji_builders_update{", "koji_hosts_enabled{", "koji_hosts_ready{",
          "koji_hosts_capacity{", "koji_task_load{", "koji_enabled_hosts_count{",
          "koji_ready_hosts_per_channel{", "koji_enabled_hosts_capacity_per_channel{",
          "koji_enabled_hosts_task_load_per_channel{", "koji_channel_enabled{",
          "koji_waiting_tasks{", "koji_in_progress_tasks{", "koji_tasks_total{",
          "koji_task_completions_total{", "koji_task_succeed_total{", "koji_task_errors_total{",
          "koji_oldest_waiting_task_create_timestamp_seconds{", "koji_packages_per_tag{",
          "koji_builds_per_tag{", "koji_builds_per_package{"}) {
      CAPTURE(metric);
      CHECK(metrics.find(std::string("\n") + metric) != std::string::npos);
    }

    // The sample database is a primary, so the replica rule succeeds with no row.
    CHECK(metrics.find("koji_exporter_query_last_run_success{query=\"replica\"} 1\n") !=
          std::string::npos);
    CHECK(metrics.find("koji_exporter_query_rows{query=\"replica\"} 0\n") != std::string::npos);
    CHECK(metrics.find("\nkoji_database_replica_lag_seconds ") == std::string::npos);

    const std::string body = directory.Write("metrics.prom", metrics);
    const auto promtool = std::system(
        fmt::format("'{}/scripts/check-metrics.sh' '{}'", KOJI_EXPORTER_SOURCE_DIR, body).c_str());
    CHECK(promtool == 0);
    CHECK(exporter.Stop(SIGTERM) == 0);
  }

  TEST_CASE("a stop signal interrupts running queries") {
    TestDatabase database;
    TempDir directory;
    directory.Write("rules/slow.yaml", R"(rules:
  - name: slow
    interval: 10m
    timeout: 5m
    sql: SELECT pg_sleep(120) AS slept, 1 AS value
    metrics:
      - name: test_slow
        type: gauge
        help: Filled only after two minutes.
        value: value
)");
    ExporterProcess exporter(directory.Write("koji_exporter.yaml", MainFile(database)));

    // Wait (at most 10 s) until the rule's query runs on the server.
    std::string running;
    for (int attempt = 0; attempt < 200 && running.empty(); ++attempt) {
      running = database.QueryValue(
          "SELECT pid FROM pg_stat_activity WHERE application_name = 'koji_exporter' "
          "AND query LIKE '%pg_sleep%' AND state = 'active'");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE_FALSE(running.empty());

    // Without the interruption the exporter would wait two minutes for pg_sleep, longer
    // than Stop() waits for the exit.
    CHECK(exporter.Stop(SIGTERM) == 0);
    CHECK(exporter.Log().find("msg=stopped") != std::string::npos);
  }

  TEST_CASE("a second stop signal exits at once") {
    TestDatabase database;
    TempDir directory;
    directory.Write("rules/test.yaml", kRules);
    ExporterProcess exporter(directory.Write("koji_exporter.yaml", MainFile(database)));

    // The graceful shutdown waits for this client's request, which never completes, for
    // the 5 s shutdown grace.
    TricklingClient slow_client(exporter.port());
    REQUIRE(exporter.WaitForAcceptedConnection());
    exporter.Signal(SIGTERM);
    for (int attempt = 0; attempt < 200; ++attempt) {
      if (exporter.Log().find("msg=stopping") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE(exporter.Log().find("msg=stopping") != std::string::npos);

    CHECK(exporter.Stop(SIGTERM) == 1);
    CHECK(exporter.Log().find("second stop signal, exiting at once") != std::string::npos);
    CHECK(exporter.Log().find("msg=stopped") == std::string::npos);
  }

  TEST_CASE("a trickling client cannot hold up shutdown") {
    TestDatabase database;
    TempDir directory;
    directory.Write("rules/test.yaml", kRules);
    ExporterProcess exporter(directory.Write("koji_exporter.yaml", MainFile(database)));

    // The client would keep sending for 60 s, longer than Stop() waits for the exit.
    TricklingClient slow_client(exporter.port());
    REQUIRE(exporter.WaitForAcceptedConnection());
    CHECK(exporter.Stop(SIGTERM) == 0);
    // The client notices within its 100 ms between two bytes.
    for (int attempt = 0; attempt < 50 && !slow_client.ClosedByServer(); ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(slow_client.ClosedByServer());
    CHECK(exporter.Log().find("did not finish within the shutdown grace") != std::string::npos);
  }

  TEST_CASE("a second exporter on the same port exits with a clear error") {
    TestDatabase database;
    TempDir directory;
    directory.Write("rules/test.yaml", kRules);
    const std::string config = directory.Write("koji_exporter.yaml", MainFile(database));
    ExporterProcess first(config);

    const auto second =
        RunExporter({"--config.file=" + config,
                     fmt::format("--web.listen-address=127.0.0.1:{}", first.port())});
    CHECK(second.exit_code == 1);
    CHECK(second.output.find("cannot listen on") != std::string::npos);
    CHECK(first.Stop(SIGTERM) == 0);
  }
}

namespace {

// One rule feeding `metric` from `sql`, as a rule file.
std::string OneRuleFile(const std::string& rule, const std::string& metric,
                        const std::string& sql) {
  return fmt::format(R"(rules:
  - name: {}
    interval: 1s
    timeout: 500ms
    sql: {}
    metrics:
      - name: {}
        type: gauge
        help: Test gauge.
        value: value
)",
                     rule, sql, metric);
}

// Number of open file descriptors of process `pid`.
std::size_t OpenFiles(pid_t pid) {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", pid))) {
    ++count;
  }
  return count;
}

// Resident set size of process `pid` in kB.
long ResidentKilobytes(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace

TEST_SUITE("exporter reload") {
  TEST_CASE("reload applies added, changed and removed rules") {
    TestDatabase database;
    TempDir directory;
    directory.Write("rules/a.yaml", OneRuleFile("first", "test_first", "SELECT 1 AS value"));
    directory.Write("rules/b.yaml", OneRuleFile("second", "test_second", "SELECT 2 AS value"));
    ExporterProcess exporter(directory.Write("koji_exporter.yaml", MainFile(database)));
    exporter.WaitForMetric("\ntest_second 2\n");

    directory.Write("rules/a.yaml", OneRuleFile("first", "test_first", "SELECT 10 AS value"));
    std::filesystem::remove(directory.path() + "/rules/b.yaml");
    directory.Write("rules/c.yaml", OneRuleFile("third", "test_third", "SELECT 3 AS value"));
    int status = 0;
    CHECK(exporter.Post("/-/reload", &status) == "configuration reloaded\n");
    CHECK(status == 200);

    // Both the new and the changed rule run right after the reload, in either order.
    exporter.WaitForMetric("\ntest_third 3\n");
    const std::string metrics = exporter.WaitForMetric("\ntest_first 10\n");
    CHECK(metrics.find("\ntest_third 3\n") != std::string::npos);
    CHECK(metrics.find("\ntest_first 10\n") != std::string::npos);
    CHECK(metrics.find("test_second") == std::string::npos);
    CHECK(metrics.find("koji_exporter_config_last_reload_successful 1\n") != std::string::npos);

    // `curl -X POST` sends no Content-Length; the reload must not wait for a body.
    const std::string output = directory.path() + "/curl.out";
    CHECK(std::system(fmt::format("curl -s -m 5 -X POST http://127.0.0.1:{}/-/reload > '{}'",
                                  exporter.port(), output)
                          .c_str()) == 0);
    std::ifstream curl_output(output);
    std::string line;
    std::getline(curl_output, line);
    CHECK(line == "configuration reloaded");
    CHECK(exporter.Stop(SIGTERM) == 0);
  }

  TEST_CASE("a bad reload keeps the old configuration") {
    TestDatabase database;
    TempDir directory;
    directory.Write("rules/a.yaml", OneRuleFile("first", "test_first", "SELECT 1 AS value"));
    ExporterProcess exporter(directory.Write("koji_exporter.yaml", MainFile(database)));
    exporter.WaitForMetric("\ntest_first 1\n");
    const std::string good = exporter.WaitForMetric("koji_exporter_config_hash ");
    const auto hash_at = good.find("\nkoji_exporter_config_hash ");
    REQUIRE(hash_at != std::string::npos);
    const std::string hash_line = good.substr(hash_at, good.find('\n', hash_at + 1) - hash_at);

    directory.Write("rules/a.yaml", OneRuleFile("first", "test_first_ms", "SELECT 5 AS value"));
    exporter.Signal(SIGHUP);
    std::string metrics = exporter.WaitForMetric("koji_exporter_config_last_reload_successful 0\n");
    CHECK(metrics.find("koji_exporter_config_last_reload_successful 0\n") != std::string::npos);
    CHECK(metrics.find("\ntest_first 1\n") != std::string::npos);
    CHECK(metrics.find(hash_line + "\n") != std::string::npos);
    CHECK(exporter.Log().find("rules/a.yaml:7:15: rule \\\"first\\\": metric name "
                              "\\\"test_first_ms\\\" ends in the non-base unit") !=
          std::string::npos);

    int status = 0;
    const std::string body = exporter.Post("/-/reload", &status);
    CHECK(status == 500);
    CHECK(body.find("configuration reload failed; the old configuration stays in force:\n") == 0);
    CHECK(body.find("rules/a.yaml:7:15:") != std::string::npos);

    // A GET cannot trigger a reload.
    exporter.Get("/-/reload", &status);
    CHECK(status == 405);
    CHECK(exporter.Stop(SIGTERM) == 0);
  }

  TEST_CASE("reloads leak no files or memory") {
    TestDatabase database;
    TempDir directory;
    directory.Write("rules/a.yaml", OneRuleFile("first", "test_first", "SELECT 1 AS value"));
    // Two main files that differ in their connection settings, so that switching between
    // them replaces the scheduler and its sessions.
    const std::string main_a = fmt::format(
        "database:\n  dsn: \"{} application_name=reload_a\"\nrule_files: [\"rules/*.yaml\"]\n",
        database.Conninfo());
    const std::string main_b = fmt::format(
        "database:\n  dsn: \"{} application_name=reload_b\"\nrule_files: [\"rules/*.yaml\"]\n",
        database.Conninfo());
    const std::string config = directory.Write("koji_exporter.yaml", main_a);
    ExporterProcess exporter(config);
    exporter.WaitForMetric("\ntest_first 1\n");

    // Warm up allocator pools and the HTTP threads, then measure.
    const auto reload_times = [&](int count, bool switch_sessions) {
      for (int i = 0; i < count; ++i) {
        if (switch_sessions) directory.Write("koji_exporter.yaml", i % 2 == 0 ? main_b : main_a);
        int status = 0;
        const std::string body = exporter.Post("/-/reload", &status);
        if (status != 200) {
          const std::string log = exporter.Log();
          FAIL("reload " << i << " returned status " << status << " with \"" << body
                         << "\"; exporter log ends with:\n"
                         << log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
        }
      }
    };
    reload_times(50, true);
    const std::size_t files_before = OpenFiles(exporter.pid());
    const long memory_before = ResidentKilobytes(exporter.pid());

    reload_times(1000, false);
    reload_times(300, true);

    const std::size_t files_after = OpenFiles(exporter.pid());
    const long memory_after = ResidentKilobytes(exporter.pid());
    MESSAGE("after 1,300 reloads: open files " << files_before << " -> " << files_after << ", RSS "
                                               << memory_before << " kB -> " << memory_after
                                               << " kB");
    // Sessions may be connecting at this moment: allow the pool's two sessions.
    CHECK(files_after <= files_before + 2);
    // 1,300 reloads; a leak of even 2 kB each would exceed this.
    CHECK(memory_after - memory_before < 2048);
    CHECK(exporter.WaitForMetric("\ntest_first 1\n").find("\ntest_first 1\n") != std::string::npos);
    CHECK(exporter.Stop(SIGTERM) == 0);
  }
}

}  // namespace koji_exporter
