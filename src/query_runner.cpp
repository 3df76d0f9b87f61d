// Runs rule SQL through libpqxx 6.4 and classifies its failures.
#include "koji_exporter/query_runner.hpp"

#include <pqxx/pqxx>

#include <fmt/format.h>

namespace koji_exporter {
namespace {

// SQLSTATE 57014 (query_canceled) is what statement_timeout raises; libpqxx 6.4 has no
// separate exception class for it.
constexpr const char* kQueryCanceled = "57014";

std::string FirstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  return line;
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
  }
  return "sql";
}

// Wraps the libpqxx connection, whose type is an alias in 6.4 and cannot be declared
// ahead in the header.
struct QueryRunner::Session {
  explicit Session(const std::string& conninfo) : connection(conninfo) {}
  pqxx::connection connection;
};

QueryRunner::QueryRunner(std::string conninfo) : conninfo_(std::move(conninfo)) {}

QueryRunner::~QueryRunner() = default;

bool QueryRunner::Connected() const { return session_ && session_->connection.is_open(); }

QueryRunner::Session& QueryRunner::Connection() {
  if (!Connected()) {
    session_.reset();
    session_ = std::make_unique<Session>(conninfo_);
  }
  return *session_;
}

QueryResult QueryRunner::Run(const Rule& rule) {
  try {
    pqxx::read_transaction transaction(Connection().connection);
    // SET LOCAL ends with the transaction, so the session keeps no state between rules.
    transaction.exec0(fmt::format("SET LOCAL statement_timeout = {}", rule.timeout.count()));
    const pqxx::result rows = transaction.exec(rule.sql);
    transaction.commit();

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
  } catch (const pqxx::broken_connection& error) {
    // A broken libpqxx connection keeps failing: drop it so the next run reconnects.
    session_.reset();
    throw QueryError(QueryFailure::kConnection, "", FirstLine(error.what()));
  } catch (const pqxx::sql_error& error) {
    const std::string sqlstate = error.sqlstate();
    const QueryFailure failure =
        sqlstate == kQueryCanceled ? QueryFailure::kTimeout : QueryFailure::kSql;
    if (!Connected()) session_.reset();
    throw QueryError(failure, sqlstate, FirstLine(error.what()));
  } catch (const pqxx::failure& error) {
    // Other libpqxx failures (an in-doubt commit, a protocol error) leave the session in
    // an unknown state, so it is re-opened as well.
    session_.reset();
    throw QueryError(QueryFailure::kConnection, "", FirstLine(error.what()));
  }
}

}  // namespace koji_exporter
