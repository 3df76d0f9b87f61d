// Runs one rule's SQL on a PostgreSQL session of its own. It deals with libpqxx and read-only
// transactions, not metrics or schedules.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "koji_exporter/row_mapper.hpp"
#include "koji_exporter/rule.hpp"

namespace koji_exporter {

/// Why a run failed: the session broke or could not be opened, the statement timed out,
/// or the server rejected the statement.
enum class QueryFailure { kConnection, kTimeout, kSql };

/// Returns "connection", "timeout" or "sql".
const char* QueryFailureName(QueryFailure failure);

/// Raised by QueryRunner::Run. what() is a one-line message without the password or SQL.
class QueryError : public std::runtime_error {
 public:
  QueryError(QueryFailure failure, std::string sqlstate, const std::string& message)
      : std::runtime_error(message), failure_(failure), sqlstate_(std::move(sqlstate)) {}
  QueryFailure failure() const { return failure_; }
  /// Five-character SQLSTATE, empty when the server sent none.
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  QueryFailure failure_;
  std::string sqlstate_;
};

/// One database session, opened on first use and re-opened after it breaks. Not
/// thread-safe: each worker owns one.
class QueryRunner {
 public:
  /// `conninfo` as built by BuildConninfo; it may contain the password and is never
  /// printed.
  explicit QueryRunner(std::string conninfo);
  ~QueryRunner();
  QueryRunner(const QueryRunner&) = delete;
  QueryRunner& operator=(const QueryRunner&) = delete;

  /// Runs `rule.sql` in a READ ONLY transaction with `statement_timeout` set to the
  /// rule's timeout, and returns its rows as text. Throws QueryError.
  QueryResult Run(const Rule& rule);

  /// Whether a session is open now.
  bool Connected() const;

 private:
  struct Session;
  Session& Connection();

  std::string conninfo_;
  std::unique_ptr<Session> session_;
};

}  // namespace koji_exporter
