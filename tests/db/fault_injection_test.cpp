// Fault injection on PostgreSQL clusters of the tests' own. The exporter keeps serving
// while the server is down and recovers when it comes back. On a hot standby it retries
// soon when replay cancels a query, and the replica rule reports the replay lag. The
// shared test server cannot be used, because these faults would break other suites.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>

#include "db/exporter_process.hpp"
#include "db/private_cluster.hpp"
#include "db/test_database.hpp"

namespace koji_exporter {
namespace {

using testing::ExporterProcess;
using testing::PrivateCluster;
using testing::TempDir;

// The ports only name the clusters' Unix sockets; no TCP port is opened.
constexpr int kRestartPort = 55497;
constexpr int kPrimaryPort = 55496;
constexpr int kStandbyPort = 55495;

std::string MainFile(const PrivateCluster& cluster) {
  return fmt::format("database:\n  dsn: \"{}\"\nrule_files: [\"rules/*.yaml\"]\n",
                     cluster.Conninfo());
}

}  // namespace

TEST_SUITE("fault injection") {
  TEST_CASE("values recover after a database restart") {
    PrivateCluster cluster("restart", kRestartPort);
    REQUIRE(cluster.Psql("CREATE TABLE reading (value int); INSERT INTO reading VALUES (42)") == 0);
    TempDir directory;
    directory.Write("rules/reading.yaml", R"(rules:
  - name: reading
    interval: 1s
    timeout: 500ms
    sql: SELECT value FROM reading
    metrics:
      - name: test_reading
        type: gauge
        help: The value in the reading table.
        value: value
)");
    ExporterProcess exporter(directory.Write("koji_exporter.yaml", MainFile(cluster)));
    REQUIRE(exporter.WaitForMetric("\ntest_reading 42\n").find("\ntest_reading 42\n") !=
            std::string::npos);

    REQUIRE(cluster.PgCtl("stop -m fast") == 0);
    std::string metrics = exporter.WaitForMetric("koji_exporter_database_up 0\n");
    CHECK(metrics.find("koji_exporter_database_up 0\n") != std::string::npos);
    int status = 0;
    exporter.Get("/healthz", &status);
    CHECK(status == 200);
    CHECK(metrics.find("koji_exporter_query_last_success_timestamp_seconds{query=\"reading\"}") !=
          std::string::npos);

    REQUIRE(cluster.PgCtl("start") == 0);
    REQUIRE(cluster.Psql("UPDATE reading SET value = 43") == 0);
    // Connection failures are retried after 1 s, doubling up to the 1 s interval, so the
    // new value shows within a few seconds; 10 s are allowed.
    metrics = exporter.WaitForMetric("\ntest_reading 43\n");
    CHECK(metrics.find("\ntest_reading 43\n") != std::string::npos);
    CHECK(metrics.find("koji_exporter_database_up 1\n") != std::string::npos);

    const std::string log = exporter.Log();
    CHECK(log.find("msg=\"database unreachable;") != std::string::npos);
    CHECK(log.find("msg=\"database reachable\"") != std::string::npos);
    CHECK(exporter.Stop(SIGTERM) == 0);
  }

  TEST_CASE("a recovery conflict on a standby is retried soon") {
    PrivateCluster primary("primary", kPrimaryPort);
    primary.AllowStandbys();
    REQUIRE(primary.Psql("CREATE TABLE control (slow boolean); INSERT INTO control VALUES (true);"
                         "CREATE TABLE target (id int); INSERT INTO target VALUES (1), (2), (3)") ==
            0);
    PrivateCluster standby("standby", kStandbyPort, primary);

    // The first run sleeps, holding a lock on `target`, until replay cancels it. The
    // interval is an hour: only the quick retry of a recovery conflict can run it again.
    TempDir directory;
    directory.Write("rules/conflict.yaml", R"(rules:
  - name: conflict
    interval: 1h
    timeout: 5m
    sql: >-
      SELECT count(*) AS value FROM target
      WHERE (SELECT 1 FROM control, pg_sleep(CASE WHEN slow THEN 120 ELSE 0 END)) = 1
    metrics:
      - name: test_target_rows
        type: gauge
        help: Rows in the target table.
        value: value
)");
    ExporterProcess exporter(directory.Write("koji_exporter.yaml", MainFile(standby)));
    std::string sleeping;
    for (int attempt = 0; attempt < 200 && sleeping.empty(); ++attempt) {
      sleeping = standby.QueryValue(
          "SELECT pid FROM pg_stat_activity WHERE application_name = 'koji_exporter' "
          "AND query LIKE '%pg_sleep%' AND state = 'active'");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE_FALSE(sleeping.empty());

    // Replaying the exclusive lock conflicts with the sleeping query's lock.
    REQUIRE(primary.Psql("BEGIN; UPDATE control SET slow = false;"
                         "LOCK TABLE target IN ACCESS EXCLUSIVE MODE; COMMIT") == 0);

    const std::string metrics = exporter.WaitForMetric("\ntest_target_rows 3\n");
    CHECK(metrics.find("\ntest_target_rows 3\n") != std::string::npos);
    CHECK(
        metrics.find("koji_exporter_query_failures_total{query=\"conflict\",reason=\"sql\"} 1\n") !=
        std::string::npos);
    CHECK(metrics.find("koji_exporter_database_up 1\n") != std::string::npos);
    const std::string log = exporter.Log();
    CHECK(log.find("sqlstate=40001") != std::string::npos);
    CHECK(log.find("conflict with recovery") != std::string::npos);
    // A cancelled query is no outage: the session stays open.
    CHECK(log.find("database unreachable") == std::string::npos);
    CHECK(exporter.Stop(SIGTERM) == 0);

    // The default replica rule reports the replay lag on the standby, which has replayed
    // the update, and nothing on the primary.
    const auto on_standby = testing::CollectSamples(standby.Conninfo(), {"queries/replica.yaml"});
    REQUIRE(on_standby.count("koji_database_replica_lag_seconds") == 1);
    CHECK(on_standby.at("koji_database_replica_lag_seconds") >= 0);
    CHECK(on_standby.count("koji_database_replica_last_replay_timestamp_seconds") == 1);
    CHECK(testing::CollectSamples(primary.Conninfo(), {"queries/replica.yaml"}).empty());
  }
}

}  // namespace koji_exporter
