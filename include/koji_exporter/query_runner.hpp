// Runs one rule's SQL on a PostgreSQL session of its own. It deals with libpqxx and read-only
// transactions, not metrics or schedules.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "koji_exporter/row_mapper.hpp"
#include "koji_exporter/rule.hpp"

namespace koji_exporter {

/// Why a run failed: the session broke or could not be opened, the statement timed out,
/// the server rejected the statement, or Interrupt() ended the run because the exporter is
/// stopping or replacing its sessions.
enum class QueryFailure { kConnection, kTimeout, kSql, kInterrupted };

/// Returns "connection", "timeout", "sql" or "interrupted".
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

/// Runs the statements of one run, all in the run's transaction and so on one snapshot.
class StatementRunner {
 public:
  virtual ~StatementRunner() = default;
  /// Runs `sql` with the text parameters $1, $2, ... and returns its rows as text.
  virtual QueryResult Exec(const std::string& sql, const std::vector<std::string>& parameters) = 0;
};

/// One database session, opened on first use and re-opened after it breaks. Run() is
/// called by one thread at a time (each worker owns a runner); Interrupt() may be called
/// from any thread.
///
/// Besides the server-side statement_timeout, every run has a client-side deadline
/// (ClientDeadline()): a server that stops answering, e.g. a frozen host, cannot report
/// its own timeout, so a watchdog thread closes the session's socket (and requests a
/// cancel, as Interrupt() does) and the run fails with QueryFailure::kTimeout instead of
/// blocking its worker.
class QueryRunner {
 public:
  /// `conninfo` as built by BuildConninfo; it may contain the password and is never
  /// printed.
  explicit QueryRunner(std::string conninfo);
  ~QueryRunner();
  QueryRunner(const QueryRunner&) = delete;
  QueryRunner& operator=(const QueryRunner&) = delete;

  /// Runs `rule.sql` in a READ ONLY transaction with `statement_timeout` set to the
  /// rule's timeout and `lock_timeout` to half of it, and returns its rows as text. Throws
  /// QueryError.
  QueryResult Run(const Rule& rule);

  /// Calls `body` inside one READ ONLY, REPEATABLE READ transaction, in which every
  /// statement has `timeout` as its statement_timeout and its own client deadline, and
  /// rolls the transaction back. Throws QueryError, and passes on what `body` throws.
  void RunTransaction(std::chrono::milliseconds timeout,
                      const std::function<void(StatementRunner&)>& body);

  /// Ends a run in progress at once by closing the session's socket, and makes every
  /// later Run() fail at once with QueryFailure::kInterrupted; for shutting down. A cancel
  /// request sent from a short session of its own stops the abandoned statement on the
  /// server; if that fails, the server stops it at its statement_timeout.
  void Interrupt();

  /// Whether a session is open now.
  bool Connected() const;

  /// Opens a session if none is open, and returns whether one is open afterwards; this
  /// separates a session that the server ended from a database that cannot be reached.
  bool Reconnect();

  /// Time after which a run with server-side `timeout` is abandoned: the timeout plus a
  /// quarter of it, and at least 2 s, for the server to report the timeout itself.
  static std::chrono::milliseconds ClientDeadline(std::chrono::milliseconds timeout);

 private:
  struct Session;
  Session& Connection();
  void ReplaceSession(std::unique_ptr<Session> session);
  void CloseSocketLocked();
  void RequestCancelLocked(int backend_pid);
  void ReleaseAdvisoryLocks();
  void WatchdogLoop();
  void StartDeadline(std::chrono::milliseconds client_deadline);
  void RunStatements(std::chrono::milliseconds timeout, std::chrono::milliseconds client_deadline,
                     const std::function<void(StatementRunner&)>& body);

  std::string conninfo_;

  // Guards session_ against the watchdog and Interrupt() while the worker replaces it,
  // and the run state below.
  mutable std::mutex mutex_;
  std::condition_variable deadline_changed_;
  std::unique_ptr<Session> session_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  bool deadline_passed_ = false;
  bool interrupted_ = false;
  bool stopping_ = false;
  std::thread watchdog_;
  std::atomic<bool> cancelling_{false};
  std::thread canceller_;
};

}  // namespace koji_exporter
