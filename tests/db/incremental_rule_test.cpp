// Incremental rules against a real PostgreSQL. After every change the sums equal a full
// count of the table, through churn, restarts, rows committed out of key order and deleted
// rows. A result that breaks the rule's contract fails the run without harm.
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "db/test_database.hpp"
#include "koji_exporter/incremental_rule.hpp"

namespace koji_exporter {
namespace {

using testing::TestDatabase;
using Totals = std::map<std::string, std::vector<double>>;

// Jobs move from 0 (waiting) to 1 (running) to 2 (done) or 3 (failed), like Koji's tasks.
constexpr const char* kSchema =
    "CREATE TABLE job (id serial PRIMARY KEY, state int NOT NULL, kind text NOT NULL)";

Rule JobRule(std::chrono::milliseconds reorder_window = std::chrono::minutes(10)) {
  Rule rule;
  rule.name = "jobs";
  rule.sql =
      "SELECT id, state IN (0, 1) AS open, kind, 1 AS jobs, (state = 1)::int AS running, "
      "(state = 2)::int AS done, (state = 3)::int AS failed FROM job;";
  rule.interval = std::chrono::seconds(60);
  rule.timeout = std::chrono::seconds(10);
  rule.incremental = IncrementalSpec{"id", "open", reorder_window, std::chrono::seconds(30)};
  for (const char* value : {"jobs", "running", "done", "failed"}) {
    MetricSpec metric;
    metric.name = std::string("test_") + value;
    metric.value_column = value;
    metric.label_columns = {"kind"};
    rule.metrics.push_back(metric);
  }
  return rule;
}

// The same sums, counted over the whole table.
Totals FullCount(const TestDatabase& database) {
  pqxx::connection connection(database.Conninfo());
  pqxx::work transaction(connection);
  Totals totals;
  for (const auto& row : transaction.exec(
           "SELECT kind, count(*), count(*) FILTER (WHERE state = 1), "
           "count(*) FILTER (WHERE state = 2), count(*) FILTER (WHERE state = 3) "
           "FROM job GROUP BY kind")) {
    totals[row[0].c_str()] = {row[1].as<double>(), row[2].as<double>(), row[3].as<double>(),
                              row[4].as<double>()};
  }
  return totals;
}

Totals ToTotals(const QueryResult& result) {
  Totals totals;
  for (const auto& row : result.rows) {
    auto& values = totals[row[0].value_or("")];
    for (std::size_t i = 1; i < row.size(); ++i) values.push_back(std::stod(row[i].value()));
  }
  return totals;
}

// Inserts `count` jobs of random kinds and states, and moves some open jobs on.
void Churn(const TestDatabase& database, std::mt19937& random, int count) {
  std::string sql;
  for (int i = 0; i < count; ++i) {
    sql += fmt::format("INSERT INTO job (state, kind) VALUES ({}, '{}');", random() % 4,
                       random() % 3 == 0 ? "build" : "buildArch");
  }
  sql += fmt::format(
      "UPDATE job SET state = state + 1 + (random() < 0.3)::int "
      "WHERE state IN (0, 1) AND id % {} = 0;",
      2 + random() % 3);
  database.Execute(sql);
}

// Creates the job table with two finished jobs and returns JobRule() as if read from
// rules/jobs.yaml, line 3.
Rule FinishedJobsRule(const TestDatabase& database) {
  database.Execute(kSchema);
  database.Execute("INSERT INTO job (state, kind) VALUES (2, 'build'), (3, 'build')");
  Rule rule = JobRule();
  rule.mark.file = "rules/jobs.yaml";
  rule.mark.line = 3;
  return rule;
}

// Runs `rule` once with a sum at start and returns the QueryError it raised, if any.
std::optional<QueryError> FirstRunError(const TestDatabase& database, const Rule& rule) {
  QueryRunner runner(database.Conninfo());
  IncrementalState state(1);
  try {
    RunRule(runner, rule, &state);
  } catch (const QueryError& error) {
    return error;
  }
  return std::nullopt;
}

}  // namespace

TEST_SUITE("incremental rules") {
  TEST_CASE("sums equal a full count under churn and after a restart") {
    TestDatabase database;
    database.Execute(kSchema);
    std::mt19937 random(42);
    Churn(database, random, 40);

    const Rule rule = JobRule();
    QueryRunner runner(database.Conninfo());
    // Five rows read one by one at the start, so the first sum covers the rest.
    IncrementalState state(5);
    CHECK(ToTotals(state.Collect(runner, rule)) == FullCount(database));
    for (int round = 0; round < 15; ++round) {
      CAPTURE(round);
      Churn(database, random, 1 + static_cast<int>(random() % 8));
      CHECK(ToTotals(state.Collect(runner, rule)) == FullCount(database));
    }

    // A restart starts from nothing and sums the same.
    IncrementalState restarted(5);
    CHECK(ToTotals(restarted.Collect(runner, rule)) == FullCount(database));
    CHECK(ToTotals(restarted.Collect(runner, rule)) == ToTotals(state.Collect(runner, rule)));
  }

  TEST_CASE("a row committed after rows with larger keys is counted") {
    TestDatabase database;
    database.Execute(kSchema);
    std::mt19937 random(7);
    Churn(database, random, 10);

    const Rule rule = JobRule();
    QueryRunner runner(database.Conninfo());
    IncrementalState state(5);
    state.Collect(runner, rule);

    // The first insert takes the smaller id but commits after the second.
    pqxx::connection slow_connection(database.Conninfo());
    pqxx::work slow(slow_connection);
    slow.exec0("INSERT INTO job (state, kind) VALUES (2, 'late')");
    database.Execute("INSERT INTO job (state, kind) VALUES (2, 'build')");
    CHECK(ToTotals(state.Collect(runner, rule)) == FullCount(database));
    slow.commit();
    const Totals totals = ToTotals(state.Collect(runner, rule));
    CHECK(totals.count("late") == 1);
    CHECK(totals == FullCount(database));
  }

  TEST_CASE("without a reorder window a late row is missed") {
    // The counterpart of the test above: it shows what the window is for.
    TestDatabase database;
    database.Execute(kSchema);
    const Rule rule = JobRule(std::chrono::milliseconds(0));
    QueryRunner runner(database.Conninfo());
    IncrementalState state(5);
    state.Collect(runner, rule);

    pqxx::connection slow_connection(database.Conninfo());
    pqxx::work slow(slow_connection);
    slow.exec0("INSERT INTO job (state, kind) VALUES (2, 'late')");
    database.Execute("INSERT INTO job (state, kind) VALUES (2, 'build')");
    state.Collect(runner, rule);
    slow.commit();
    CHECK(ToTotals(state.Collect(runner, rule)).count("late") == 0);
  }

  TEST_CASE("an open row that is deleted stops counting") {
    TestDatabase database;
    database.Execute(kSchema);
    database.Execute(
        "INSERT INTO job (state, kind) VALUES (0, 'build'), (1, 'build'), (2, 'build')");
    const Rule rule = JobRule();
    QueryRunner runner(database.Conninfo());
    IncrementalState state;
    state.Collect(runner, rule);
    database.Execute("DELETE FROM job WHERE state = 1");
    CHECK(ToTotals(state.Collect(runner, rule)) == FullCount(database));
  }

  TEST_CASE("a key that is not an integer fails the run") {
    TestDatabase database;
    database.Execute(kSchema);
    database.Execute("INSERT INTO job (state, kind) VALUES (0, 'build')");
    Rule rule = JobRule();
    rule.sql = "SELECT id + 0.5 AS id, state IN (0, 1) AS open, kind, 1 AS jobs, 0 AS running, "
               "0 AS done, 0 AS failed FROM job";
    QueryRunner runner(database.Conninfo());
    IncrementalState state;
    CHECK_THROWS_WITH_AS(state.Collect(runner, rule),
                         "incremental rule \"jobs\": key column \"id\" must be a non-NULL "
                         "integer, but a row has \"1.5\"",
                         MappingError);
  }

  TEST_CASE("a text key fails the sum at start clearly") {
    TestDatabase database;
    database.Execute(kSchema);
    database.Execute("INSERT INTO job (state, kind) VALUES (2, 'build'), (3, 'buildArch')");
    Rule rule = JobRule();
    rule.incremental->key_column = "kind";
    QueryRunner runner(database.Conninfo());
    IncrementalState state(1);
    CHECK_THROWS_WITH_AS(RunRule(runner, rule, &state),
                         "incremental rule \"jobs\": key column \"kind\" must be a non-NULL "
                         "integer, but a row has \"build\"",
                         MappingError);
  }

  TEST_CASE("a slow sum at start names seed_timeout") {
    TestDatabase database;
    Rule rule = FinishedJobsRule(database);
    rule.incremental->seed_timeout = std::chrono::seconds(1);
    // The sleep runs once per statement that reads the jobs column, as the sum does.
    rule.sql = "SELECT id, state IN (0, 1) AS open, kind, "
               "(SELECT 1 FROM pg_sleep(3)) AS jobs, 0 AS running, 0 AS done, 0 AS failed "
               "FROM job";

    const std::optional<QueryError> error = FirstRunError(database, rule);
    REQUIRE(error);
    CHECK(error->failure() == QueryFailure::kTimeout);
    const std::string message = error->what();
    CAPTURE(message);
    CHECK(message.find(": the sum at start took longer than incremental.seed_timeout (1s); "
                       "raise seed_timeout in rules/jobs.yaml:3") != std::string::npos);
  }

  TEST_CASE("a boolean value column names the contract") {
    TestDatabase database;
    Rule rule = FinishedJobsRule(database);
    rule.sql = "SELECT id, state IN (0, 1) AS open, kind, true AS jobs, 0 AS running, "
               "0 AS done, 0 AS failed FROM job";

    const std::optional<QueryError> error = FirstRunError(database, rule);
    REQUIRE(error);
    CHECK(error->sqlstate() == "42883");
    const std::string message = error->what();
    CAPTURE(message);
    CHECK(message.find("an incremental rule needs an integer column for incremental.key "
                       "(\"id\"), a boolean one for incremental.open (\"open\") and numeric "
                       "value columns: fix the rule at rules/jobs.yaml:3") != std::string::npos);
  }

  TEST_CASE("two rows with one key fail the run and change nothing") {
    TestDatabase database;
    database.Execute(kSchema);
    database.Execute("INSERT INTO job (state, kind) VALUES (0, 'build'), (2, 'build')");
    Rule rule = JobRule();
    QueryRunner runner(database.Conninfo());
    IncrementalState state;
    state.Collect(runner, rule);
    database.Execute("INSERT INTO job (state, kind) VALUES (3, 'build')");

    const std::string sql = rule.sql;
    rule.sql = "SELECT j.id, j.state IN (0, 1) AS open, j.kind, 1 AS jobs, 0 AS running, "
               "0 AS done, 0 AS failed FROM job j CROSS JOIN (VALUES (1), (2)) AS twice (n)";
    CHECK_THROWS_WITH_AS(state.Collect(runner, rule),
                         "incremental rule \"jobs\": the SQL returned more than one row with "
                         "key 3; it must return one row per key",
                         MappingError);
    rule.sql = sql;
    CHECK(ToTotals(state.Collect(runner, rule)) == FullCount(database));
  }
}

}  // namespace koji_exporter
