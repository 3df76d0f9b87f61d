#include "db/private_cluster.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "db/test_database.hpp"

namespace koji_exporter::testing {
namespace {

// Wraps `command` so it runs as the postgres user when the tests run as root, since the
// server refuses to run as root; PGBIN names the newest installed PostgreSQL.
std::string AsOwner(const std::string& command) {
  return fmt::format(
      "PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); "
      "if [ \"$(id -u)\" = 0 ]; then runuser -u postgres -- sh -c \"{0}\"; "
      "else sh -c \"{0}\"; fi",
      command);
}

std::string ClusterDir(const std::string& name) {
  return fmt::format("/tmp/koji-exporter-{}-{}", name, ::getpid());
}

std::string DemoScript() { return SourcePath("scripts/demo_postgres.sh"); }

}  // namespace

int Shell(const std::string& command) { return std::system(command.c_str()); }

PrivateCluster::PrivateCluster(const std::string& name, int port)
    : dir_(ClusterDir(name)), port_(port) {
  REQUIRE(Shell(fmt::format("'{}' start '{}' {} > /dev/null", DemoScript(), dir_, port_)) == 0);
}

PrivateCluster::PrivateCluster(const std::string& name, int port, const PrivateCluster& primary)
    : dir_(ClusterDir(name)), port_(port), standby_(true) {
  REQUIRE(Shell(fmt::format("rm -rf '{0}' && mkdir -m 0700 '{0}' && "
                            "if [ \"$(id -u)\" = 0 ]; then chown postgres: '{0}'; fi",
                            dir_)) == 0);
  REQUIRE(Shell(AsOwner(fmt::format(
              "$PGBIN/pg_basebackup -h {} -p {} -U postgres -D {}/data -R -X stream -c fast",
              primary.dir_, primary.port_, dir_))) == 0);
  // The copied postgresql.conf names the primary's port and socket directory.
  REQUIRE(PgCtl(fmt::format("start -o '-p {} -k {} -c max_standby_streaming_delay=0'", port_,
                            dir_)) == 0);
}

PrivateCluster::~PrivateCluster() {
  if (standby_) {
    PgCtl("stop -m fast");
    Shell(fmt::format("rm -rf '{}'", dir_));
  } else {
    Shell(fmt::format("'{}' stop '{}' > /dev/null 2>&1", DemoScript(), dir_));
  }
}

std::string PrivateCluster::Conninfo() const {
  return fmt::format("host={} port={} dbname=postgres user=postgres", dir_, port_);
}

int PrivateCluster::Psql(const std::string& sql) const {
  return Shell(
      fmt::format("psql -X -q -v ON_ERROR_STOP=1 -h '{}' -p {} -U postgres -d "
                  "postgres -c \"{}\" > /dev/null",
                  dir_, port_, sql));
}

std::string PrivateCluster::QueryValue(const std::string& sql) const {
  const std::string command =
      fmt::format("psql -X -q -A -t -h '{}' -p {} -U postgres -d postgres -c \"{}\" 2>/dev/null",
                  dir_, port_, sql);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return "";
  std::string output;
  std::array<char, 256> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe.get()) != nullptr) output += buffer.data();
  return output.substr(0, output.find('\n'));
}

int PrivateCluster::PgCtl(const std::string& arguments) const {
  return Shell(AsOwner(fmt::format("$PGBIN/pg_ctl -D {0}/data -l {0}/postgres.log -w -t 60 {1}",
                                   dir_, arguments)) +
               " > /dev/null");
}

void PrivateCluster::AllowStandbys() const {
  // ALTER SYSTEM cannot run inside a transaction, so one statement per psql call.
  REQUIRE(Psql("ALTER SYSTEM SET wal_level = replica") == 0);
  REQUIRE(Psql("ALTER SYSTEM SET max_wal_senders = 4") == 0);
  REQUIRE(PgCtl("restart") == 0);
}

}  // namespace koji_exporter::testing
