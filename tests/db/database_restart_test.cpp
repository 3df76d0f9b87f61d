// Fault injection on a private PostgreSQL cluster of the test's own: the exporter keeps
// serving while the server is down and recovers when it comes back. The shared test
// server cannot be used, because stopping it would break the suites running beside this one.
#include <doctest/doctest.h>

#include <signal.h>

#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "db/exporter_process.hpp"
#include "db/test_database.hpp"

namespace koji_exporter {
namespace {

using testing::ExporterProcess;
using testing::SourcePath;
using testing::TempDir;

// Runs a shell command and returns its exit status.
int Shell(const std::string& command) { return std::system(command.c_str()); }

// A throwaway cluster started with scripts/demo_postgres.sh, listening on a Unix socket
// in its own directory only; stopped and removed on destruction.
class PrivateCluster {
 public:
  PrivateCluster()
      : script_(SourcePath("scripts/demo_postgres.sh")),
        dir_(fmt::format("/tmp/koji-exporter-restart-{}", ::getpid())) {
    REQUIRE(Shell(fmt::format("'{}' start '{}' {} > /dev/null", script_, dir_, kPort)) == 0);
  }
  ~PrivateCluster() { Shell(fmt::format("'{}' stop '{}' > /dev/null 2>&1", script_, dir_)); }

  std::string Conninfo() const {
    return fmt::format("host={} port={} dbname=postgres user=postgres", dir_, kPort);
  }
  int Psql(const std::string& sql) const {
    return Shell(fmt::format("psql -X -q -v ON_ERROR_STOP=1 -h '{}' -p {} -U postgres -d "
                             "postgres -c \"{}\" > /dev/null",
                             dir_, kPort, sql));
  }
  // pg_ctl as the owner of the data directory (postgres when the tests run as root).
  int PgCtl(const std::string& arguments) const {
    return Shell(fmt::format(
        "bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); "
        "if [ \"$(id -u)\" = 0 ]; then runuser -u postgres -- \"$bindir/pg_ctl\" {0}; "
        "else \"$bindir/pg_ctl\" {0}; fi > /dev/null",
        fmt::format("-D '{}/data' -l '{}/postgres.log' -w -t 60 {}", dir_, dir_, arguments)));
  }

 private:
  static constexpr int kPort = 55497;
  std::string script_;
  std::string dir_;
};

}  // namespace

TEST_SUITE("fault injection") {
  TEST_CASE("values recover after a database restart") {
    PrivateCluster cluster;
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
    ExporterProcess exporter(directory.Write(
        "koji_exporter.yaml",
        fmt::format("database:\n  dsn: \"{}\"\nrule_files: [\"rules/*.yaml\"]\n",
                    cluster.Conninfo())));
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
}

}  // namespace koji_exporter
