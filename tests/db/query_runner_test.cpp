// QueryRunner against a real PostgreSQL: text rows, read-only transactions, timeouts,
// SQL errors, connection failures and reconnecting after the session is killed.
#include <doctest/doctest.h>

#include <signal.h>

#include <string>
#include <thread>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "db/test_database.hpp"
#include "koji_exporter/query_runner.hpp"

namespace koji_exporter {
namespace {

using testing::TestDatabase;

Rule SqlRule(const std::string& sql, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  Rule rule;
  rule.name = "test_rule";
  rule.sql = sql;
  rule.interval = std::chrono::seconds(60);
  rule.timeout = timeout;
  return rule;
}

QueryError RunExpectingError(QueryRunner& runner, const Rule& rule) {
  try {
    runner.Run(rule);
  } catch (const QueryError& error) {
    return error;
  }
  FAIL("the rule was expected to fail: " << rule.sql);
  return QueryError(QueryFailure::kSql, "", "");
}

// Returns the server process id of the session whose application_name is `name`, polling
// (at most 5 s) until it runs a statement other than an idle one when `active` is set.
int BackendPid(const TestDatabase& database, const std::string& name, bool active = false) {
  const std::string sql = fmt::format(
      "SELECT pid FROM pg_stat_activity WHERE application_name = '{}'{}", name,
      active ? " AND state = 'active'" : "");
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::string pid = database.QueryValue(sql);
    if (!pid.empty()) return std::stoi(pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("no session with application_name " << name);
  return -1;
}

// Stops a server process for the lifetime of the object, as a frozen host would.
class FrozenProcess {
 public:
  explicit FrozenProcess(int pid) : pid_(pid) { kill(pid_, SIGSTOP); }
  ~FrozenProcess() { kill(pid_, SIGCONT); }

 private:
  int pid_;
};

}  // namespace

TEST_SUITE("query_runner") {
  TEST_CASE("rows come back as text with NULLs") {
    TestDatabase database;
    QueryRunner runner(database.Conninfo());
    const QueryResult result = runner.Run(
        SqlRule("SELECT 'builder-01' AS host, 1.5::float8 AS load, NULL::text AS arch, true AS ready "
                "UNION ALL SELECT 'builder-02', 0, 'x86_64', false ORDER BY 1"));
    REQUIRE(result.columns == std::vector<std::string>{"host", "load", "arch", "ready"});
    REQUIRE(result.rows.size() == 2);
    CHECK(result.rows[0][0] == std::optional<std::string>("builder-01"));
    CHECK(result.rows[0][1] == std::optional<std::string>("1.5"));
    CHECK_FALSE(result.rows[0][2].has_value());
    CHECK(result.rows[0][3] == std::optional<std::string>("t"));
    CHECK(result.rows[1][3] == std::optional<std::string>("f"));
  }

  TEST_CASE("rules run read-only with their own statement timeout") {
    TestDatabase database;
    QueryRunner runner(database.Conninfo());
    const QueryResult result = runner.Run(
        SqlRule("SELECT current_setting('transaction_read_only') AS read_only, "
                "current_setting('statement_timeout') AS timeout",
                std::chrono::milliseconds(1500)));
    REQUIRE(result.rows.size() == 1);
    CHECK(result.rows[0][0] == std::optional<std::string>("on"));
    CHECK(result.rows[0][1] == std::optional<std::string>("1500ms"));

    // SET LOCAL ended with the rule's transaction: the next rule gets its own value.
    const QueryResult next = runner.Run(SqlRule(
        "SELECT current_setting('statement_timeout') AS timeout", std::chrono::seconds(7)));
    CHECK(next.rows[0][0] == std::optional<std::string>("7s"));
  }

  TEST_CASE("a writing rule fails and changes nothing") {
    TestDatabase database;
    database.Execute("CREATE TABLE host (id int, name text); INSERT INTO host VALUES (1, 'a')");
    QueryRunner runner(database.Conninfo());
    for (const char* sql : {
             "INSERT INTO host VALUES (2, 'x') RETURNING id",
             "UPDATE host SET name = 'x' RETURNING id",
             "DELETE FROM host RETURNING id",
             "WITH gone AS (DELETE FROM host RETURNING id) SELECT id FROM gone",
             "CREATE TABLE intruder (id int)",
             "SELECT nextval('host_id_seq')",
         }) {
      CAPTURE(sql);
      const QueryError error = RunExpectingError(runner, SqlRule(sql));
      CHECK(error.failure() == QueryFailure::kSql);
      // 25006: read_only_sql_transaction; the sequence does not even exist, 42P01.
      CHECK((error.sqlstate() == "25006" || error.sqlstate() == "42P01"));
    }
    CHECK(database.QueryValue("SELECT string_agg(id || ':' || name, ',') FROM host") == "1:a");
    CHECK(database.QueryValue("SELECT to_regclass('intruder') IS NULL") == "t");
  }

  TEST_CASE("a rule cannot run a second statement") {
    TestDatabase database;
    QueryRunner runner(database.Conninfo());
    const QueryError error =
        RunExpectingError(runner, SqlRule("SELECT 1 AS one; SET search_path = bogus"));
    CHECK(error.failure() == QueryFailure::kSql);
    CHECK(error.sqlstate() == "42601");
    CHECK(std::string(error.what()) ==
          "ERROR:  cannot insert multiple commands into a prepared statement");
  }

  TEST_CASE("session state a rule changes is rolled back") {
    TestDatabase database;
    database.Execute("CREATE ROLE " + database.name() + "_other");
    QueryRunner runner(database.Conninfo());
    const std::string user = runner.Run(SqlRule("SELECT current_user AS u")).rows[0][0].value();

    runner.Run(SqlRule("SELECT set_config('search_path', 'bogus', false) AS v"));
    runner.Run(SqlRule("SET ROLE " + database.name() + "_other"));

    const QueryResult after =
        runner.Run(SqlRule("SELECT current_user AS u, current_setting('search_path') AS p"));
    CHECK(after.rows[0][0] == std::optional<std::string>(user));
    CHECK(after.rows[0][1] == std::optional<std::string>("\"$user\", public"));
    database.Execute("DROP ROLE " + database.name() + "_other");
  }

  TEST_CASE("a slow rule is stopped by its statement timeout") {
    TestDatabase database;
    QueryRunner runner(database.Conninfo());
    const QueryError error = RunExpectingError(
        runner, SqlRule("SELECT pg_sleep(30) AS slept", std::chrono::milliseconds(200)));
    CHECK(error.failure() == QueryFailure::kTimeout);
    CHECK(error.sqlstate() == "57014");
    CHECK(std::string(error.what()).find("statement timeout") != std::string::npos);

    // The session stays usable for the next rule.
    CHECK(runner.Run(SqlRule("SELECT 1 AS one")).rows.size() == 1);
  }

  TEST_CASE("a rule waiting on a lock gives up at its lock timeout") {
    TestDatabase database;
    database.Execute("CREATE TABLE host (id int)");
    pqxx::connection holder(database.Conninfo());
    pqxx::work lock(holder);
    lock.exec0("LOCK TABLE host IN ACCESS EXCLUSIVE MODE");

    QueryRunner runner(database.Conninfo());
    const QueryError error = RunExpectingError(
        runner, SqlRule("SELECT count(*) AS hosts FROM host", std::chrono::seconds(2)));
    CHECK(error.failure() == QueryFailure::kTimeout);
    CHECK(error.sqlstate() == "55P03");
    CHECK(std::string(error.what()).find("lock timeout") != std::string::npos);

    lock.abort();
    CHECK(runner.Run(SqlRule("SELECT count(*) AS hosts FROM host")).rows[0][0] ==
          std::optional<std::string>("0"));
  }

  TEST_CASE("a missing table is an sql failure with its sqlstate") {
    TestDatabase database;
    QueryRunner runner(database.Conninfo());
    const QueryError error = RunExpectingError(runner, SqlRule("SELECT count(*) FROM no_such_table"));
    CHECK(error.failure() == QueryFailure::kSql);
    CHECK(error.sqlstate() == "42P01");
    CHECK(std::string(error.what()) ==
          "ERROR:  relation \"no_such_table\" does not exist");
  }

  TEST_CASE("an unreachable server is a connection failure without the password") {
    QueryRunner runner("host=/nonexistent/socket/dir port=1 password=hunter2 connect_timeout=2");
    const QueryError error = RunExpectingError(runner, SqlRule("SELECT 1"));
    CHECK(error.failure() == QueryFailure::kConnection);
    CHECK(std::string(error.what()).find("hunter2") == std::string::npos);
    CHECK_FALSE(runner.Connected());
  }

  TEST_CASE("a killed session is replaced on the next run") {
    TestDatabase database;
    QueryRunner runner(database.Conninfo() + " application_name=runner_under_test");
    REQUIRE(runner.Run(SqlRule("SELECT 1 AS one")).rows.size() == 1);

    database.Execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'runner_under_test'");

    const QueryError error = RunExpectingError(runner, SqlRule("SELECT 1 AS one"));
    CHECK(error.failure() == QueryFailure::kConnection);
    CHECK(std::string(error.what()).rfind("the database closed the session (", 0) == 0);
    // The server is still there, which separates a killed session from an outage.
    CHECK(runner.Reconnect());
    CHECK(runner.Run(SqlRule("SELECT 2 AS two")).rows[0][0] == std::optional<std::string>("2"));
  }

  TEST_CASE("reconnect fails while the server is unreachable") {
    QueryRunner runner("host=/nonexistent/socket/dir port=1 connect_timeout=2");
    CHECK_FALSE(runner.Reconnect());
    CHECK_FALSE(runner.Connected());
  }

  TEST_CASE("advisory locks a rule takes are released after its run") {
    TestDatabase database;
    QueryRunner runner(database.Conninfo());
    runner.Run(SqlRule("SELECT pg_advisory_lock(4242) AS locked"));
    CHECK(database.QueryValue("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") ==
          "0");

    // Also when the run fails after taking the lock.
    RunExpectingError(runner,
                      SqlRule("SELECT pg_advisory_lock(4243) AS locked, 1 / 0 AS broken"));
    CHECK(database.QueryValue("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") ==
          "0");
  }
}

TEST_SUITE("query_runner") {
  TEST_CASE("a frozen server is abandoned at the client deadline") {
    TestDatabase database;
    QueryRunner runner(database.Conninfo() + " application_name=frozen_runner");
    REQUIRE(runner.Run(SqlRule("SELECT 1 AS one")).rows.size() == 1);

    QueryError error(QueryFailure::kSql, "", "");
    {
      // A stopped backend cannot enforce its statement timeout of 300 ms, so only the
      // client deadline (300 ms + 2 s) ends the run.
      FrozenProcess frozen(BackendPid(database, "frozen_runner"));
      error = RunExpectingError(runner, SqlRule("SELECT 1 AS one", std::chrono::milliseconds(300)));
    }
    CHECK(error.failure() == QueryFailure::kTimeout);
    CHECK(error.sqlstate().empty());
    CHECK(std::string(error.what()) ==
          "no answer from the database within 2.3s (statement timeout 0.3s); the session was "
          "closed and will be opened again at the next run");
    CHECK(QueryRunner::ClientDeadline(std::chrono::seconds(60)) == std::chrono::seconds(75));

    // The next run opens a new session.
    CHECK(runner.Run(SqlRule("SELECT 2 AS two")).rows[0][0] == std::optional<std::string>("2"));
  }

  TEST_CASE("interrupt ends a running query at once") {
    TestDatabase database;
    QueryRunner runner(database.Conninfo() + " application_name=interrupted_runner");
    QueryError error(QueryFailure::kSql, "", "");
    std::thread worker([&] {
      error = RunExpectingError(
          runner, SqlRule("SELECT pg_sleep(30) AS slept", std::chrono::seconds(60)));
    });
    BackendPid(database, "interrupted_runner", true);
    runner.Interrupt();
    worker.join();

    CHECK(error.failure() == QueryFailure::kInterrupted);
    CHECK(std::string(error.what()) == "the exporter is stopping");
    const QueryError later = RunExpectingError(runner, SqlRule("SELECT 1 AS one"));
    CHECK(std::string(later.what()) == "the exporter is stopping");

    // The cancel request stops pg_sleep on the server too, long before its 30 s. Without
    // it the server would notice the closed socket only when pg_sleep ends.
    std::string sleeping = "1";
    for (int attempt = 0; attempt < 100 && sleeping != "0"; ++attempt) {
      sleeping = database.QueryValue(
          "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
          "'interrupted_runner' AND query LIKE '%pg_sleep%'");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(sleeping == "0");
  }
}

}  // namespace koji_exporter
