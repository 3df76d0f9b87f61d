// Disposable databases for the database suites, on the server that the standard PG*
// variables name, and a helper that runs rule files once against one.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace koji_exporter::testing {

/// Creates a database with a random name, loads SQL files into it with psql, and drops it
/// on destruction. Fails the test (via an exception) when no server is reachable.
class TestDatabase {
 public:
  /// `sql_files` are paths relative to the repository root, loaded in order.
  explicit TestDatabase(const std::vector<std::string>& sql_files = {});
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  /// libpq conninfo of the database; host, port and user come from the environment.
  std::string Conninfo() const;
  /// Runs deploy/sql/koji_exporter_role.sql in the database, so that the role
  /// koji_exporter may read the tables that file lists. The role itself is shared by the
  /// whole server, so test processes take turns through an advisory lock, and its
  /// connection limit is lifted because they may all connect as it at the same time.
  /// Throws std::runtime_error when psql fails.
  void ApplyExporterRole() const;
  /// libpq conninfo of the database as the role koji_exporter. The server must let that
  /// role log in without a password, as the cluster of scripts/test.sh does (trust
  /// authentication on its Unix socket).
  std::string ExporterConninfo() const;
  const std::string& name() const { return name_; }
  /// Runs `sql` (one or more statements) in the database and discards any rows.
  void Execute(const std::string& sql) const;
  /// Runs `sql` and returns the first column of the first row as text ("" for NULL).
  std::string QueryValue(const std::string& sql) const;

 private:
  std::string name_;
};

/// Absolute path of a file in the repository.
std::string SourcePath(const std::string& relative);

/// Runs every rule of the given rule files (paths relative to the repository root) once
/// against `conninfo` and returns each sample as `name{label="value",...}` -> value, labels
/// sorted by name, no braces without labels. Throws std::runtime_error naming the rule on
/// any failure or odd value.
std::map<std::string, double> CollectSamples(const std::string& conninfo,
                                             const std::vector<std::string>& rule_files);

}  // namespace koji_exporter::testing
