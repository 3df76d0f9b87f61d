// Throwaway PostgreSQL clusters of a test's own, for faults that would break the shared
// test server: stopping it, or replaying changes on a hot standby. Each listens only on a
// Unix socket in its own directory under /tmp and is stopped and removed on destruction.
#pragma once

#include <string>

namespace koji_exporter::testing {

class PrivateCluster {
 public:
  /// Starts a new primary with scripts/demo_postgres.sh. `name` keeps the directories of
  /// several clusters apart; `port` names the socket.
  PrivateCluster(const std::string& name, int port);
  /// Starts a hot standby of `primary` made with pg_basebackup; the primary must have
  /// called AllowStandbys(). The standby cancels any query that conflicts with replay at
  /// once (max_standby_streaming_delay = 0).
  PrivateCluster(const std::string& name, int port, const PrivateCluster& primary);
  ~PrivateCluster();
  PrivateCluster(const PrivateCluster&) = delete;
  PrivateCluster& operator=(const PrivateCluster&) = delete;

  /// libpq conninfo of the database "postgres" as the superuser.
  std::string Conninfo() const;
  /// Runs `sql` with psql in one implicit transaction; returns psql's exit status.
  int Psql(const std::string& sql) const;
  /// Runs `sql` with psql and returns the first column of its first row ("" for none).
  std::string QueryValue(const std::string& sql) const;
  /// Runs pg_ctl with `arguments` on this cluster, as the owner of its data directory.
  int PgCtl(const std::string& arguments) const;
  /// Turns on WAL for streaming replication and restarts, so a standby can follow.
  void AllowStandbys() const;

 private:
  std::string dir_;
  int port_;
  bool standby_ = false;
};

/// Runs a shell command and returns its exit status.
int Shell(const std::string& command);

}  // namespace koji_exporter::testing
