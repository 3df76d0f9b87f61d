#include "koji_exporter/incremental_rule.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "koji_exporter/rule_loader.hpp"

namespace koji_exporter {
namespace {

// The columns an incremental rule's SQL must return, and how the statements of a run
// read them. Every statement wraps the rule's SQL as a subquery, and PostgreSQL pulls a
// plain SELECT up into the outer query. A condition on the key then reaches the table's
// primary key index, and a column that the outer query does not use is not computed.
struct SqlTexts {
  std::string key;
  std::string open;
  std::vector<std::string> labels;
  std::vector<std::string> values;

  std::string top_key;      // the key seed_recheck_rows below the newest
  std::string closed_sums;  // sums of the closed rows up to a key, by label set
  std::string open_rows;    // open rows up to a key, in full
  std::string keys_above;   // keys above a key, in order
  std::string rows_by_key;  // rows with the given keys, in full
  std::string values_by_key;  // key, open and values of the rows with the given keys
};

std::string Quote(const std::string& name) {
  std::string quoted = "\"";
  for (const char c : name) {
    quoted += c;
    if (c == '"') quoted += '"';
  }
  return quoted + "\"";
}

// The rule's SQL as a subquery named r. A trailing semicolon would end the statement early.
std::string Subquery(const std::string& sql) {
  std::string body = sql;
  while (!body.empty() && (std::isspace(static_cast<unsigned char>(body.back())) ||
                           body.back() == ';')) {
    body.pop_back();
  }
  return "(\n" + body + "\n) AS r";
}

std::string Columns(const std::vector<std::string>& names, const char* format) {
  std::vector<std::string> parts;
  for (const auto& name : names) parts.push_back(fmt::format(format, Quote(name)));
  return fmt::format("{}", fmt::join(parts, ", "));
}

SqlTexts PrepareStatements(const Rule& rule) {
  SqlTexts s;
  s.key = rule.incremental->key_column;
  s.open = rule.incremental->open_column;
  s.labels = rule.metrics.front().label_columns;
  for (const auto& metric : rule.metrics) {
    if (std::find(s.values.begin(), s.values.end(), metric.value_column) == s.values.end()) {
      s.values.push_back(metric.value_column);
    }
  }

  const std::string from = Subquery(rule.sql);
  const std::string key = "r." + Quote(s.key);
  const std::string open = "r." + Quote(s.open);
  std::string full = fmt::format("{}, {}", key, open);
  if (!s.labels.empty()) full += ", " + Columns(s.labels, "r.{}");
  full += ", " + Columns(s.values, "r.{}");

  s.top_key = fmt::format("SELECT {0} FROM {1} ORDER BY {0} DESC OFFSET $1 LIMIT 1", key, from);
  const std::string grouped = s.labels.empty() ? "" : Columns(s.labels, "r.{}") + ", ";
  s.closed_sums = fmt::format("SELECT {}{} FROM {} WHERE {} <= $1::bigint AND {} IS NOT TRUE{}",
                              grouped, Columns(s.values, "sum(r.{})"), from, key, open,
                              s.labels.empty() ? "" : " GROUP BY " + Columns(s.labels, "r.{}"));
  s.open_rows = fmt::format("SELECT {} FROM {} WHERE {} <= $1::bigint AND {} IS TRUE", full, from,
                            key, open);
  s.keys_above = fmt::format("SELECT {0} FROM {1} WHERE {0} > $1::bigint ORDER BY {0} LIMIT $2",
                             key, from);
  s.rows_by_key = fmt::format("SELECT {} FROM {} WHERE {} = ANY ($1::bigint[])", full, from, key);
  s.values_by_key = fmt::format("SELECT {}, {}, {} FROM {} WHERE {} = ANY ($1::bigint[])", key,
                                open, Columns(s.values, "r.{}"), from, key);
  return s;
}

// Reads the results of the statements above, which name their columns in a fixed order.
class ResultReader {
 public:
  ResultReader(const Rule& rule, const QueryResult& result) : rule_(rule), result_(result) {}

  long long Key(std::size_t row, std::size_t column) const {
    const auto& field = result_.rows[row][column];
    errno = 0;
    char* end = nullptr;
    const long long key = field ? std::strtoll(field->c_str(), &end, 10) : 0;
    if (!field || field->empty() || *end != '\0' || errno == ERANGE) {
      throw MappingError(fmt::format(
          "incremental rule \"{}\": key column \"{}\" must be a non-NULL integer, but a row has "
          "{}",
          rule_.name, rule_.incremental->key_column, field ? "\"" + *field + "\"" : "NULL"));
    }
    return key;
  }

  bool Open(std::size_t row, std::size_t column) const {
    const auto& field = result_.rows[row][column];
    return field && (*field == "t" || *field == "true");
  }

  std::vector<double> Values(std::size_t row, std::size_t first, std::size_t count) const {
    std::vector<double> values;
    for (std::size_t i = first; i < first + count; ++i) {
      const auto& field = result_.rows[row][i];
      if (!field) {
        values.push_back(0);
        continue;
      }
      const std::optional<double> value = ParseSampleValue(*field);
      if (!value) {
        throw MappingError(fmt::format(
            "incremental rule \"{}\": value column \"{}\" must be numeric, but a row has \"{}\"",
            rule_.name, result_.columns[i], *field));
      }
      values.push_back(*value);
    }
    return values;
  }

  std::vector<std::optional<std::string>> Labels(std::size_t row, std::size_t first,
                                                 std::size_t count) const {
    const auto& fields = result_.rows[row];
    return {fields.begin() + static_cast<std::ptrdiff_t>(first),
            fields.begin() + static_cast<std::ptrdiff_t>(first + count)};
  }

  std::size_t size() const { return result_.rows.size(); }

 private:
  const Rule& rule_;
  const QueryResult& result_;
};

std::string KeyArray(const std::vector<long long>& keys) {
  return fmt::format("{{{}}}", fmt::join(keys, ","));
}

// Guards the column positions that ResultReader relies on. A column missing from the
// rule's SQL fails earlier, with the server's "column r.x does not exist".
void CheckColumns(const Rule& rule, const QueryResult& result, std::size_t expected) {
  if (result.columns.size() != expected) {
    throw MappingError(fmt::format("incremental rule \"{}\": expected {} columns, got {}",
                                   rule.name, expected, result.columns.size()));
  }
}

}  // namespace

const IncrementalState::Labels* IncrementalState::Intern(Labels labels) {
  return &*labels_.insert(std::move(labels)).first;
}

void IncrementalState::AddClosed(const Labels* labels, const std::vector<double>& values) {
  auto& sums = closed_[labels];
  if (sums.empty()) sums.assign(values.size(), 0);
  for (std::size_t i = 0; i < values.size(); ++i) sums[i] += values[i];
}

QueryResult IncrementalState::Collect(QueryRunner& runner, const Rule& rule,
                                      Clock::time_point now) {
  if (!seeded_) Seed(runner, rule);
  Update(runner, rule, now);
  return Totals(rule);
}

void IncrementalState::Seed(QueryRunner& runner, const Rule& rule) {
  const SqlTexts s = PrepareStatements(rule);
  QueryResult top;
  QueryResult sums;
  QueryResult open;
  long long low_key = LLONG_MIN;
  try {
    runner.RunTransaction(rule.incremental->seed_timeout, [&](StatementRunner& statements) {
      top = statements.Exec(s.top_key, {std::to_string(seed_recheck_rows_)});
      // With fewer rows than that, every row is read one by one as a new row.
      if (top.rows.empty()) return;
      // Checked before the sum, whose comparison would fail on a text key less clearly.
      low_key = ResultReader(rule, top).Key(0, 0);
      const std::string low = std::to_string(low_key);
      sums = statements.Exec(s.closed_sums, {low});
      open = statements.Exec(s.open_rows, {low});
    });
  } catch (const QueryError& error) {
    if (error.failure() != QueryFailure::kTimeout) throw;
    throw QueryError(error.failure(), error.sqlstate(),
                     fmt::format("{}: the sum at start took longer than incremental.seed_timeout "
                                 "({}); raise seed_timeout in {}:{}",
                                 error.what(), FormatDuration(rule.incremental->seed_timeout),
                                 rule.mark.file, rule.mark.line));
  }

  const std::size_t labels = s.labels.size();
  const std::size_t values = s.values.size();
  if (!top.rows.empty()) {
    CheckColumns(rule, sums, labels + values);
    CheckColumns(rule, open, 2 + labels + values);
  }

  // Parsed in full before anything is kept, so a bad row leaves the state unseeded.
  // NOTE: two rows with one key are caught among new rows only; the sum here would count
  // them twice.
  std::vector<std::pair<Labels, std::vector<double>>> closed_rows;
  const ResultReader sum_reader(rule, sums);
  for (std::size_t row = 0; row < sum_reader.size(); ++row) {
    closed_rows.emplace_back(sum_reader.Labels(row, 0, labels),
                             sum_reader.Values(row, labels, values));
  }
  std::vector<std::tuple<long long, Labels, std::vector<double>>> open_rows;
  const ResultReader open_reader(rule, open);
  for (std::size_t row = 0; row < open_reader.size(); ++row) {
    open_rows.emplace_back(open_reader.Key(row, 0), open_reader.Labels(row, 2, labels),
                           open_reader.Values(row, 2 + labels, values));
  }

  for (auto& [row_labels, row_values] : closed_rows) {
    AddClosed(Intern(std::move(row_labels)), row_values);
  }
  for (auto& [key, row_labels, row_values] : open_rows) {
    open_[key] = OpenRow{Intern(std::move(row_labels)), std::move(row_values)};
  }
  low_key_ = low_key;
  seeded_ = true;
}

void IncrementalState::Update(QueryRunner& runner, const Rule& rule, Clock::time_point now) {
  const SqlTexts s = PrepareStatements(rule);
  std::vector<long long> open_keys;
  open_keys.reserve(open_.size());
  for (const auto& [key, row] : open_) open_keys.push_back(key);

  QueryResult keys;
  QueryResult new_rows;
  QueryResult reread;
  std::vector<long long> unseen;
  runner.RunTransaction(rule.timeout, [&](StatementRunner& statements) {
    keys = statements.Exec(s.keys_above, {std::to_string(low_key_),
                                          std::to_string(recent_.size() + kNewRowsPerRun)});
    const ResultReader key_reader(rule, keys);
    for (std::size_t row = 0; row < key_reader.size(); ++row) {
      const long long key = key_reader.Key(row, 0);
      if (recent_.count(key) == 0) unseen.push_back(key);
    }
    if (!unseen.empty()) new_rows = statements.Exec(s.rows_by_key, {KeyArray(unseen)});
    if (!open_keys.empty()) reread = statements.Exec(s.values_by_key, {KeyArray(open_keys)});
  });

  const std::size_t labels = s.labels.size();
  const std::size_t values = s.values.size();
  if (!unseen.empty()) CheckColumns(rule, new_rows, 2 + labels + values);
  if (!open_keys.empty()) CheckColumns(rule, reread, 2 + values);

  struct NewRow {
    long long key;
    bool open;
    Labels labels;
    std::vector<double> values;
  };
  std::vector<NewRow> arrived;
  std::set<long long> arrived_keys;
  const ResultReader new_reader(rule, new_rows);
  for (std::size_t row = 0; row < new_reader.size(); ++row) {
    NewRow parsed{new_reader.Key(row, 0), new_reader.Open(row, 1),
                  new_reader.Labels(row, 2, labels), new_reader.Values(row, 2 + labels, values)};
    if (!arrived_keys.insert(parsed.key).second) {
      throw MappingError(fmt::format(
          "incremental rule \"{}\": the SQL returned more than one row with key {}; it must "
          "return one row per key",
          rule.name, parsed.key));
    }
    arrived.push_back(std::move(parsed));
  }
  std::vector<std::tuple<long long, bool, std::vector<double>>> changed;
  const ResultReader reread_reader(rule, reread);
  for (std::size_t row = 0; row < reread_reader.size(); ++row) {
    changed.emplace_back(reread_reader.Key(row, 0), reread_reader.Open(row, 1),
                         reread_reader.Values(row, 2, values));
  }

  // Rows still open, with their values now; rows that closed add their final values once.
  std::set<long long> still_there;
  for (auto& [key, open, row_values] : changed) {
    const auto found = open_.find(key);
    if (found == open_.end() || !still_there.insert(key).second) continue;
    if (open) {
      found->second.values = std::move(row_values);
    } else {
      AddClosed(found->second.labels, row_values);
      open_.erase(found);
    }
  }
  // An open row the SQL no longer returns was deleted; it stops counting.
  for (const long long key : open_keys) {
    if (still_there.count(key) == 0) open_.erase(key);
  }

  for (auto& row : arrived) {
    recent_.emplace(row.key, now);
    const Labels* interned = Intern(std::move(row.labels));
    if (row.open) {
      open_[row.key] = OpenRow{interned, std::move(row.values)};
    } else {
      AddClosed(interned, row.values);
    }
  }

  // Keys seen longer ago than the reorder window move below the low key: a row with a
  // smaller key that has not appeared by now is taken never to appear.
  const auto window = rule.incremental->reorder_window;
  while (!recent_.empty() && recent_.begin()->second + window <= now) {
    low_key_ = recent_.begin()->first;
    recent_.erase(recent_.begin());
  }
}

QueryResult IncrementalState::Totals(const Rule& rule) const {
  const SqlTexts s = PrepareStatements(rule);
  std::map<Labels, std::vector<double>> totals;
  const auto add = [&totals, &s](const Labels& labels, const std::vector<double>& values) {
    auto& sums = totals[labels];
    if (sums.empty()) sums.assign(s.values.size(), 0);
    for (std::size_t i = 0; i < values.size() && i < sums.size(); ++i) sums[i] += values[i];
  };
  for (const auto& [labels, sums] : closed_) add(*labels, sums);
  for (const auto& [key, row] : open_) add(*row.labels, row.values);

  QueryResult result;
  result.columns = s.labels;
  result.columns.insert(result.columns.end(), s.values.begin(), s.values.end());
  for (const auto& [labels, sums] : totals) {
    auto& row = result.rows.emplace_back(labels);
    for (const double sum : sums) row.emplace_back(fmt::format("{}", sum));
  }
  return result;
}

std::string IncrementalNewestKeyStatement(const Rule& rule) {
  return PrepareStatements(rule).top_key;
}

std::vector<IncrementalStatement> IncrementalRunStatements(const Rule& rule,
                                                           long long newest_key) {
  const SqlTexts s = PrepareStatements(rule);
  // A busy hub adds some hundred rows between runs, and some thousand are open.
  const std::string some_keys = fmt::format("{{{}}}", fmt::join(std::vector<long long>{
      newest_key - 2, newest_key - 1, newest_key}, ","));
  return {{"new keys", s.keys_above, {std::to_string(newest_key - 1000), "1000"}},
          {"new rows", s.rows_by_key, {some_keys}},
          {"open rows", s.values_by_key, {some_keys}}};
}

IncrementalStatement IncrementalSeedStatement(const Rule& rule) {
  return {"sum at start", PrepareStatements(rule).closed_sums, {std::to_string(LLONG_MAX)}};
}

QueryResult RunRule(QueryRunner& runner, const Rule& rule, IncrementalState* state) {
  if (!rule.incremental) return runner.Run(rule);
  try {
    return state->Collect(runner, rule);
  } catch (const QueryError& error) {
    // A missing column or a column of the wrong type shows up as an undefined column,
    // function or operator (42703, 42883) or a datatype mismatch (42804).
    const std::string& code = error.sqlstate();
    if (error.failure() != QueryFailure::kSql ||
        (code != "42703" && code != "42883" && code != "42804")) {
      throw;
    }
    throw QueryError(error.failure(), code,
                     fmt::format("{}; an incremental rule needs an integer column for "
                                 "incremental.key (\"{}\"), a boolean one for incremental.open "
                                 "(\"{}\") and numeric value columns: fix the rule at {}:{}",
                                 error.what(), rule.incremental->key_column,
                                 rule.incremental->open_column, rule.mark.file, rule.mark.line));
  }
}

}  // namespace koji_exporter
