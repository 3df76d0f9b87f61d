// Runs rule SQL through libpqxx 6.4, classifies its failures, and abandons runs that the
// server does not finish in time.
#include "koji_exporter/query_runner.hpp"

#include <fmt/format.h>
#include <sys/socket.h>

#include <algorithm>
#include <pqxx/pqxx>

namespace koji_exporter {
namespace {

using Clock = std::chrono::steady_clock;

// SQLSTATE 57014 (query_canceled) is what statement_timeout raises, 55P03
// (lock_not_available) what lock_timeout raises; libpqxx 6.4 has no separate exception
// classes for them.
constexpr const char* kQueryCanceled = "57014";
constexpr const char* kLockNotAvailable = "55P03";

// Appended to the conninfo of the short session that cancels a statement. A later keyword
// overrides an earlier one, so these bound the wait however the DSN sets them.
constexpr const char* kCancelSessionOptions =
    "connect_timeout=5 options='-c statement_timeout=5000'";

std::string FirstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  return line;
}

// libpqxx 6.4 derives its class 40 exceptions from pqxx::failure rather than sql_error
// and keeps no SQLSTATE with them, so the exception's type identifies it.
std::string RollbackSqlstate(const pqxx::transaction_rollback& error) {
  if (dynamic_cast<const pqxx::serialization_failure*>(&error) != nullptr) return "40001";
  if (dynamic_cast<const pqxx::deadlock_detected*>(&error) != nullptr) return "40P01";
  if (dynamic_cast<const pqxx::statement_completion_unknown*>(&error) != nullptr) return "40003";
  return "40000";
}

std::string Seconds(std::chrono::milliseconds duration) {
  return fmt::format("{:g}s", duration.count() / 1000.0);
}

}  // namespace

const char* QueryFailureName(QueryFailure failure) {
  switch (failure) {
    case QueryFailure::kConnection:
      return "connection";
    case QueryFailure::kTimeout:
      return "timeout";
    case QueryFailure::kSql:
      return "sql";
    case QueryFailure::kInterrupted:
      return "interrupted";
  }
  return "sql";
}

// Wraps the libpqxx connection, whose type is an alias in 6.4 and cannot be declared
// ahead in the header.
struct QueryRunner::Session {
  explicit Session(const std::string& conninfo)
      : connection(conninfo), backend_pid(connection.backendpid()) {}
  pqxx::connection connection;
  // Read once here, on the worker thread, for cancel requests sent from other threads.
  const int backend_pid;
};

QueryRunner::QueryRunner(std::string conninfo)
    : conninfo_(std::move(conninfo)), watchdog_([this] { WatchdogLoop(); }) {}

QueryRunner::~QueryRunner() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  deadline_changed_.notify_all();
  watchdog_.join();
  // A cancel request in flight finishes within its own timeouts.
  if (canceller_.joinable()) canceller_.join();
}

std::chrono::milliseconds QueryRunner::ClientDeadline(std::chrono::milliseconds timeout) {
  return timeout + std::max<std::chrono::milliseconds>(std::chrono::seconds(2), timeout / 4);
}

bool QueryRunner::Reconnect() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (interrupted_) return false;
  }
  try {
    Connection();
    return true;
  } catch (const std::exception&) {
    ReplaceSession(nullptr);
    return false;
  }
}

bool QueryRunner::Connected() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return session_ && session_->connection.is_open();
}

void QueryRunner::ReplaceSession(std::unique_ptr<Session> session) {
  std::unique_ptr<Session> old;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    old = std::move(session_);
    session_ = std::move(session);
  }
  // The old session is closed outside the lock: closing can wait on the network.
}

QueryRunner::Session& QueryRunner::Connection() {
  if (!Connected()) {
    ReplaceSession(nullptr);
    ReplaceSession(std::make_unique<Session>(conninfo_));
  }
  return *session_;
}

// Shutting the socket down makes the worker's blocked read return at once, whatever the
// server does, so the worker gets a broken connection and drops the session. The server
// would not notice the closed socket until the statement sends something, so a cancel
// request stops the statement there too.
void QueryRunner::CloseSocketLocked() {
  if (!session_) return;
  RequestCancelLocked(session_->backend_pid);
  const int socket = session_->connection.sock();
  if (socket >= 0) ::shutdown(socket, SHUT_RDWR);
}

// Sends pg_cancel_backend() from a short session of its own on a separate thread, so a
// server that does not answer delays only that thread, for at most its connect and
// statement timeouts. One request at a time is enough: a later one would find the same
// statement.
void QueryRunner::RequestCancelLocked(int backend_pid) {
  if (cancelling_) return;
  if (canceller_.joinable()) canceller_.join();
  cancelling_ = true;
  canceller_ = std::thread([this, backend_pid] {
    try {
      pqxx::connection connection(conninfo_ + " " + kCancelSessionOptions);
      pqxx::nontransaction statement(connection);
      statement.exec_params("SELECT pg_cancel_backend($1)", backend_pid);
    } catch (const std::exception&) {
      // The session is being closed anyway; the server ends the statement at the latest
      // at its statement_timeout.
    }
    cancelling_ = false;
  });
}

void QueryRunner::Interrupt() {
  std::lock_guard<std::mutex> lock(mutex_);
  interrupted_ = true;
  CloseSocketLocked();
}

void QueryRunner::WatchdogLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    if (!deadline_) {
      deadline_changed_.wait(lock);
      continue;
    }
    const Clock::time_point deadline = *deadline_;
    deadline_changed_.wait_until(lock, deadline);
    if (deadline_ && *deadline_ == deadline && Clock::now() >= deadline) {
      deadline_passed_ = true;
      deadline_.reset();
      CloseSocketLocked();
    }
  }
}

QueryResult QueryRunner::Run(const Rule& rule) {
  QueryResult result;
  RunTransaction(rule.timeout,
                 [&](StatementRunner& statements) { result = statements.Exec(rule.sql, {}); });
  return result;
}

void QueryRunner::RunTransaction(std::chrono::milliseconds timeout,
                                 const std::function<void(StatementRunner&)>& body) {
  const std::chrono::milliseconds client_deadline = ClientDeadline(timeout);
  const auto started = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (interrupted_) {
      throw QueryError(QueryFailure::kInterrupted, "", "the exporter is stopping");
    }
    deadline_passed_ = false;
  }
  StartDeadline(client_deadline);

  // Clears the deadline however the run ends, so the watchdog never closes the socket
  // of a later run.
  struct DeadlineReset {
    QueryRunner& runner;
    ~DeadlineReset() {
      std::lock_guard<std::mutex> lock(runner.mutex_);
      runner.deadline_.reset();
    }
  } reset{*this};

  try {
    RunStatements(timeout, client_deadline, body);
  } catch (const QueryError& error) {
    if (error.failure() != QueryFailure::kConnection) throw;
    std::lock_guard<std::mutex> lock(mutex_);
    if (interrupted_) {
      throw QueryError(QueryFailure::kInterrupted, "", "the exporter is stopping");
    }
    if (deadline_passed_) {
      // Connecting is bounded by connect_timeout rather than the deadline, so the time
      // spent can exceed the deadline by seconds; then the message gives that time.
      const auto elapsed =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
      const auto waited =
          elapsed > client_deadline + std::chrono::seconds(1) ? elapsed : client_deadline;
      throw QueryError(
          QueryFailure::kTimeout, "",
          fmt::format("no answer from the database within {} (statement timeout {}); the "
                      "session was closed and will be opened again at the next run",
                      Seconds(waited), Seconds(timeout)));
    }
    throw;
  }
}

void QueryRunner::StartDeadline(std::chrono::milliseconds client_deadline) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    deadline_ = Clock::now() + client_deadline;
  }
  deadline_changed_.notify_all();
}

namespace {

// The statements of one run, on its open transaction. Each gets its own client deadline.
class TransactionStatements : public StatementRunner {
 public:
  TransactionStatements(pqxx::transaction_base& transaction,
                        std::function<void()> start_deadline)
      : transaction_(transaction), start_deadline_(std::move(start_deadline)) {}

  QueryResult Exec(const std::string& sql, const std::vector<std::string>& parameters) override {
    start_deadline_();
    // exec_params sends the statement through the extended protocol, which accepts
    // exactly one statement, so "SELECT ...; SET ROLE ..." is rejected as a whole.
    const pqxx::result rows =
        transaction_.exec_params(sql, pqxx::prepare::make_dynamic_params(parameters));
    QueryResult result;
    for (pqxx::row::size_type i = 0; i < rows.columns(); ++i) {
      result.columns.emplace_back(rows.column_name(i));
    }
    result.rows.reserve(rows.size());
    for (const auto& row : rows) {
      auto& values = result.rows.emplace_back();
      values.reserve(row.size());
      for (const auto& field : row) {
        if (field.is_null()) {
          values.emplace_back(std::nullopt);
        } else {
          values.emplace_back(std::string(field.c_str(), field.size()));
        }
      }
    }
    return result;
  }

 private:
  pqxx::transaction_base& transaction_;
  std::function<void()> start_deadline_;
};

}  // namespace

// A rollback keeps session-level advisory locks, which a rule can take with
// pg_advisory_lock(); releasing them keeps one rule from holding a lock after its run.
void QueryRunner::ReleaseAdvisoryLocks() {
  try {
    pqxx::nontransaction statement(session_->connection);
    statement.exec("SELECT pg_advisory_unlock_all()");
  } catch (const pqxx::failure&) {
    // A session that broke here is dropped at its next use.
  }
}

void QueryRunner::RunStatements(std::chrono::milliseconds timeout,
                                std::chrono::milliseconds client_deadline,
                                const std::function<void(StatementRunner&)>& body) {
  // Whether the session was open when it broke, rather than failing to open.
  bool opened = false;
  try {
    Session& session = Connection();
    opened = true;
    // REPEATABLE READ gives every statement of the run the same snapshot.
    pqxx::transaction<pqxx::repeatable_read, pqxx::readwrite_policy::read_only> transaction(
        session.connection);
    // A rule that waits for a lock (a DBA's ALTER TABLE, say) gives up after half its
    // timeout, so the wait is reported as a lock timeout instead of a slow statement.
    transaction.exec0(fmt::format("SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
                                  timeout.count(), std::max<long long>(1, timeout.count() / 2)));
    TransactionStatements statements(transaction,
                                     [this, client_deadline] { StartDeadline(client_deadline); });
    body(statements);
    // Rolling back undoes any session state the rule changed (set_config, SET), since a
    // read-only run has nothing to commit.
    transaction.abort();
    ReleaseAdvisoryLocks();
  } catch (const pqxx::broken_connection& error) {
    // A broken libpqxx connection keeps failing: drop it so the next run reconnects.
    ReplaceSession(nullptr);
    // When the server ends a session (pg_terminate_backend, a restart), libpq reports it
    // in words about the client, such as "Could not obtain client encoding", and libpqxx
    // 6.4 keeps the server's own message to itself.
    const std::string message =
        opened ? fmt::format("the database closed the session (pg_terminate_backend, a server "
                             "restart or a network failure): {}",
                             FirstLine(error.what()))
               : FirstLine(error.what());
    throw QueryError(QueryFailure::kConnection, "", message);
  } catch (const pqxx::sql_error& error) {
    const std::string sqlstate = error.sqlstate();
    const QueryFailure failure = sqlstate == kQueryCanceled || sqlstate == kLockNotAvailable
                                     ? QueryFailure::kTimeout
                                     : QueryFailure::kSql;
    if (Connected()) {
      ReleaseAdvisoryLocks();
    } else {
      ReplaceSession(nullptr);
    }
    throw QueryError(failure, sqlstate, FirstLine(error.what()));
  } catch (const pqxx::transaction_rollback& error) {
    // A serialization failure (also what a hot standby raises when it cancels a query for
    // a conflict with replay) or a deadlock: the session stays usable.
    if (Connected()) {
      ReleaseAdvisoryLocks();
    } else {
      ReplaceSession(nullptr);
    }
    throw QueryError(QueryFailure::kSql, RollbackSqlstate(error), FirstLine(error.what()));
  } catch (const pqxx::failure& error) {
    // Other libpqxx failures (an in-doubt commit, a protocol error) leave the session in
    // an unknown state, so it is re-opened as well.
    ReplaceSession(nullptr);
    throw QueryError(QueryFailure::kConnection, "", FirstLine(error.what()));
  }
}

}  // namespace koji_exporter
