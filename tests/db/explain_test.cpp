// koji_exporter --explain against a real database: sequential scans of large tables are
// reported, index scans are not, broken rules fail with the server's message, and the
// default rules plan on Koji's schema.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>

#include "db/exporter_process.hpp"
#include "db/test_database.hpp"

namespace koji_exporter {
namespace {

using testing::RunExporter;
using testing::SourcePath;
using testing::TempDir;
using testing::TestDatabase;

// 150,000 rows is above the 100,000 rows of kLargeTableRows. ANALYZE reads every page
// of a table this small, so pg_class.reltuples is exact.
constexpr const char* kLargeTable =
    "CREATE TABLE archived_task (id integer PRIMARY KEY, weight float8 NOT NULL);"
    "INSERT INTO archived_task SELECT g, g % 7 FROM generate_series(1, 150000) AS g;"
    "CREATE TABLE empty_queue (id integer);"
    "ANALYZE archived_task";

constexpr const char* kRules = R"(rules:
  - name: archived_weight
    sql: SELECT sum(weight) AS weight FROM archived_task
    metrics:
      - {name: test_archived_weight, type: gauge, help: Sum of all weights., value: weight}
  - name: one_archived_task
    sql: SELECT weight FROM archived_task WHERE id = 42
    metrics:
      - {name: test_one_weight, type: gauge, help: Weight of task 42., value: weight}
  - name: division_by_zero_when_run
    timeout: 1s
    sql: SELECT 1 / count(*) AS ratio FROM empty_queue
    metrics:
      - {name: test_ratio, type: gauge, help: Fails with division by zero if run., value: ratio}
)";

constexpr const char* kBrokenRules = R"(rules:
  - name: missing_table
    sql: SELECT 1 AS value FROM no_such_table
    metrics:
      - {name: test_missing, type: gauge, help: Never planned., value: value}
  - name: constant
    sql: SELECT 1 AS value
    metrics:
      - {name: test_constant, type: gauge, help: Always 1., value: value}
)";

// An incremental rule whose key is a text column, which explain finds out from the newest key.
constexpr const char* kTextKeyRules = R"(rules:
  - name: queue_by_name
    incremental: {key: name, open: open}
    sql: SELECT name, false AS open, 1 AS entries FROM queue_entry
    metrics:
      - {name: test_entries_total, type: counter, help: Entries., value: entries}
  - name: constant
    sql: SELECT 1 AS value
    metrics:
      - {name: test_constant, type: gauge, help: Always 1., value: value}
)";

// An incremental rule whose newest key takes 20 s to read, with a 1 s timeout.
constexpr const char* kSlowKeyRules = R"(rules:
  - name: slow_queue
    interval: 1m
    timeout: 1s
    incremental: {key: id, open: open}
    sql: SELECT id, false AS open, 1 AS entries FROM queue_entry WHERE (SELECT true FROM pg_sleep(20))
    metrics:
      - {name: test_entries_total, type: counter, help: Entries., value: entries}
)";

std::string MainFile(const std::string& dsn, const std::string& rule_glob) {
  return fmt::format("database:\n  dsn: \"{}\"\nrule_files: [\"{}\"]\n", dsn, rule_glob);
}

// Runs --explain on the rule file `rules` against `database`, from a temporary directory
// where the file is rules/test.yaml.
testing::CommandResult ExplainRules(const TestDatabase& database, const char* rules) {
  TempDir directory;
  directory.Write("rules/test.yaml", rules);
  const std::string config =
      directory.Write("koji_exporter.yaml", MainFile(database.Conninfo(), "rules/*.yaml"));
  return RunExporter({"--config.file=" + config, "--explain"});
}

// Returns the report block of rule `name`: from its heading to the next empty line.
std::string Block(const std::string& output, const std::string& name) {
  const std::size_t start = output.find(": rule \"" + name + "\"\n");
  if (start == std::string::npos) return "";
  const std::size_t line_start = output.rfind('\n', start) + 1;
  const std::size_t end = output.find("\n\n", start);
  return output.substr(line_start, end == std::string::npos ? end : end + 1 - line_start);
}

}  // namespace

TEST_SUITE("explain end to end") {
  TEST_CASE("explain warns of large sequential scans") {
    TestDatabase database;
    database.Execute(kLargeTable);
    const auto result = ExplainRules(database, kRules);
    CAPTURE(result.output);
    CHECK(result.exit_code == 0);

    const std::string scan = Block(result.output, "archived_weight");
    CHECK(scan.rfind("rules/test.yaml:2: rule \"archived_weight\"\n  estimated cost ", 0) == 0);
    CHECK(scan.find("\n  sequential scan of archived_task (150,000 rows)\n") != std::string::npos);
    CHECK(scan.find("\n  warning: sequential scan of archived_task (150,000 rows)\n") !=
          std::string::npos);

    const std::string index = Block(result.output, "one_archived_task");
    CHECK(index.rfind("rules/test.yaml:6: rule \"one_archived_task\"\n", 0) == 0);
    CHECK(index.find(", estimated rows 1\n") != std::string::npos);
    CHECK(index.find("sequential scan") == std::string::npos);
    CHECK(index.find("\n  ok: index scans only\n") != std::string::npos);

    // Running the statement would fail with division by zero; planning it does not.
    const std::string planned_only = Block(result.output, "division_by_zero_when_run");
    CHECK(planned_only.find("  warning: sequential scan of empty_queue (size unknown, "
                            "never analyzed)\n") != std::string::npos);
    CHECK(result.output.find("division by zero") == std::string::npos);

    CHECK(result.output.find("\n3 rule(s): 1 ok, 2 with warnings, 0 failed\n") !=
          std::string::npos);
  }

  TEST_CASE("explain continues after a broken rule") {
    TestDatabase database;
    const auto result = ExplainRules(database, kBrokenRules);
    CAPTURE(result.output);
    CHECK(result.exit_code == 1);
    CHECK(Block(result.output, "missing_table") ==
          "rules/test.yaml:2: rule \"missing_table\"\n"
          "  error: sqlstate 42P01: relation \"no_such_table\" does not exist\n");
    CHECK(Block(result.output, "constant") ==
          "rules/test.yaml:6: rule \"constant\"\n"
          "  estimated cost 0.01, estimated rows 1\n"
          "  ok: reads no table\n");
    CHECK(result.output.find("\n2 rule(s): 1 ok, 0 with warnings, 1 failed\n") !=
          std::string::npos);
  }

  TEST_CASE("explain reports a text key as an error") {
    TestDatabase database;
    database.Execute("CREATE TABLE queue_entry (name text PRIMARY KEY);"
                     "INSERT INTO queue_entry VALUES ('livemedia'), ('createrepo')");
    const auto result = ExplainRules(database, kTextKeyRules);
    CAPTURE(result.output);
    CHECK(result.exit_code == 1);
    CHECK(Block(result.output, "queue_by_name") ==
          "rules/test.yaml:2: rule \"queue_by_name\"\n"
          "  error: incremental.key \"name\" must name an integer column, but its newest value "
          "is \"livemedia\"; fix the rule at rules/test.yaml:2\n");
    CHECK(result.output.find("\n2 rule(s): 1 ok, 0 with warnings, 1 failed\n") !=
          std::string::npos);
  }

  TEST_CASE("explain reads the newest key under the rule timeout") {
    TestDatabase database;
    database.Execute("CREATE TABLE queue_entry (id integer PRIMARY KEY);"
                     "INSERT INTO queue_entry VALUES (1), (2)");
    const auto result = ExplainRules(database, kSlowKeyRules);
    CAPTURE(result.output);
    CHECK(result.exit_code == 1);
    CHECK(Block(result.output, "slow_queue") ==
          "rules/test.yaml:2: rule \"slow_queue\"\n"
          "  error: sqlstate 57014: canceling statement due to statement timeout\n");
  }

  TEST_CASE("explain plans the default rules") {
    TestDatabase database(
        {"tests/fixtures/koji_schema.sql", "tests/fixtures/koji_sample_data.sql"});
    TempDir directory;
    const std::string config = directory.Write(
        "koji_exporter.yaml", MainFile(database.Conninfo(), SourcePath("queries") + "/*.yaml"));

    const auto result = RunExporter({"--config.file=" + config, "--explain"});
    CAPTURE(result.output);
    CHECK(result.exit_code == 0);
    CHECK(result.output.find("  error: ") == std::string::npos);
    CHECK(result.output.find(" with warnings, 0 failed\n") != std::string::npos);
    for (const char* rule : {"hosts", "channels", "tasks", "tag_builds", "package_builds"}) {
      CAPTURE(rule);
      CHECK(Block(result.output, rule).find("  estimated cost ") != std::string::npos);
    }
  }

  TEST_CASE("explain hides password of unreachable database") {
    TempDir directory;
    directory.Write("rules/test.yaml", kBrokenRules);
    const std::string config = directory.Write(
        "koji_exporter.yaml",
        MainFile("host=" + directory.path() + "/no-server dbname=koji password=hunter2-secret",
                 "rules/*.yaml"));

    const auto result = RunExporter({"--config.file=" + config, "--explain"});
    CAPTURE(result.output);
    CHECK(result.exit_code == 1);
    CHECK(result.output.rfind("koji_exporter: cannot connect to the database \"", 0) == 0);
    CHECK(result.output.find("password='********'") != std::string::npos);
    CHECK(result.output.find(directory.path() + "/no-server") != std::string::npos);
    CHECK(result.output.find("hunter2-secret") == std::string::npos);
    CHECK(result.output.find(": rule \"") == std::string::npos);
  }

  TEST_CASE("explain with config check is rejected") {
    const auto result = RunExporter({"--explain", "--config.check"});
    CHECK(result.exit_code == 2);
    CHECK(result.output ==
          "koji_exporter: use --config.check or --explain, not both\n"
          "run koji_exporter --help for the flags\n");
  }
}

}  // namespace koji_exporter
