// Runs incremental rules. The exporter keeps the sums of the rows that can no longer
// change, and each run reads only the rows that are new or may still change. A rule over a
// table of a hundred million rows then costs a few index lookups per run.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "koji_exporter/query_runner.hpp"
#include "koji_exporter/row_mapper.hpp"
#include "koji_exporter/rule.hpp"

namespace koji_exporter {

/// Rows below the newest that the start reads one by one rather than in the first sum, so
/// that rows of those that commit late are still found.
inline constexpr std::size_t kSeedRecheckRows = 10000;

/// New rows read by one run at most; a run after a long pause reads the rest next time.
inline constexpr std::size_t kNewRowsPerRun = 50000;

/// The state of one incremental rule between runs. The first Collect() sums every row that
/// can no longer change in one statement (a full scan, once); later runs read:
///   - the keys above the low key: rows first seen within the reorder window, so that a row
///     that commits after rows with larger keys is still found, and new rows;
///   - the new rows in full, once each;
///   - the rows still open, by key, for their values only: a row's labels are taken when
///     it is first seen.
/// Every value so equals the sum over all rows of the rule's SQL, as long as a row commits
/// within the reorder window of the rows with larger keys, and a closed row never changes.
/// A row deleted while open stops counting. A deleted closed row keeps counting until the
/// state is seeded again, because closed rows are not read again.
class IncrementalState {
 public:
  using Clock = std::chrono::steady_clock;

  /// `seed_recheck_rows` is kSeedRecheckRows except in tests, which use small tables.
  explicit IncrementalState(std::size_t seed_recheck_rows = kSeedRecheckRows)
      : seed_recheck_rows_(seed_recheck_rows) {}

  /// Runs `rule`, which must have `incremental` set, on `runner`: seeds the sums on the
  /// first call, then reads what changed. Returns one row per label set: the label columns
  /// of the rule's metrics, then their value columns, summed, as MapRows() reads them.
  /// Throws QueryError, or MappingError for a result that breaks the rule's contract (a
  /// missing column, a key that is not an integer, two rows with one key). The state is
  /// then unchanged, so the next call tries again.
  QueryResult Collect(QueryRunner& runner, const Rule& rule, Clock::time_point now = Clock::now());

  /// Whether the first sum was taken.
  bool seeded() const { return seeded_; }

 private:
  using Labels = std::vector<std::optional<std::string>>;
  struct OpenRow {
    const Labels* labels;
    std::vector<double> values;
  };

  void Seed(QueryRunner& runner, const Rule& rule);
  void Update(QueryRunner& runner, const Rule& rule, Clock::time_point now);
  const Labels* Intern(Labels labels);
  void AddClosed(const Labels* labels, const std::vector<double>& values);
  QueryResult Totals(const Rule& rule) const;

  const std::size_t seed_recheck_rows_;
  bool seeded_ = false;
  // Every row with a key at or below low_key_ is counted; rows above it are in recent_.
  long long low_key_ = 0;
  // Keys above low_key_ already counted, with the time each was first seen.
  std::map<long long, Clock::time_point> recent_;
  std::unordered_map<long long, OpenRow> open_;
  // Sums of the closed rows by label set, and the label sets themselves, each stored once.
  std::map<const Labels*, std::vector<double>> closed_;
  std::set<Labels> labels_;
};

/// One statement that an incremental rule sends, with example parameters, for --explain.
struct IncrementalStatement {
  /// Purpose of the statement, e.g. "new keys".
  std::string purpose;
  std::string sql;
  std::vector<std::string> parameters;
};

/// Returns the statement that reads the newest key of `rule`'s rows (one index lookup).
std::string IncrementalNewestKeyStatement(const Rule& rule);

/// Returns the statements of a run of `rule` after the start (reading new keys, new rows
/// and open rows), with parameters as a run would send them when `newest_key` is the
/// newest key.
std::vector<IncrementalStatement> IncrementalRunStatements(const Rule& rule,
                                                           long long newest_key);

/// Returns the statement that sums the closed rows once at start, over the whole table.
IncrementalStatement IncrementalSeedStatement(const Rule& rule);

/// Runs `rule` once on `runner` and returns its rows: through `state` for an incremental
/// rule (then `state` must not be null), as a single statement otherwise.
QueryResult RunRule(QueryRunner& runner, const Rule& rule, IncrementalState* state);

}  // namespace koji_exporter
