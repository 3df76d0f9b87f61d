// Plans every rule with EXPLAIN, without running it, and reports what each would cost:
// the estimated cost and rows, and the sequential scans of large tables. It deals with
// query plans, not schedules or metrics.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "koji_exporter/rule.hpp"

namespace koji_exporter {

/// Estimated rows (pg_class.reltuples) above which a sequential scan of a table earns a
/// warning. Koji's host, channels and tag tables stay far below it; task, build and
/// tag_listing pass it on large instances.
inline constexpr double kLargeTableRows = 100000;

/// One plan node that reads a table, in EXPLAIN's terms.
struct TableScan {
  /// "Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", ...
  std::string node_type;
  std::string schema;
  std::string table;
  /// pg_class.reltuples: the planner's estimate of the table's rows. Negative when the
  /// table was never vacuumed or analyzed (PostgreSQL 14 and later store -1 then).
  double table_rows = -1;
};

/// The planner's estimates for one rule's statement.
struct PlanEstimate {
  /// Total cost of the top plan node, in the planner's units (seq_page_cost is 1).
  double total_cost = 0;
  /// Rows the statement is estimated to return.
  double rows = 0;
  /// Every table scan of the plan, subplans included, in the order of the JSON plan.
  std::vector<TableScan> scans;
};

/// Returns the sequential scans that earn a warning: of tables above kLargeTableRows or
/// of unknown size. Each table appears once, at its first scan.
std::vector<TableScan> CostlyScans(const PlanEstimate& plan);

/// Returns the one-line verdict on a plan, starting with "ok: " or "warning: ", e.g.
/// "warning: sequential scan of task (2,300,000 rows)".
std::string Verdict(const PlanEstimate& plan);

/// Formats the report block of a rule that EXPLAIN planned: its name, file:line, cost,
/// rows, costly scans and verdict, each line ending in a newline.
std::string FormatPlanReport(const Rule& rule, const PlanEstimate& plan);

/// Formats the report block of a rule whose EXPLAIN failed with `error`.
std::string FormatFailureReport(const Rule& rule, const std::string& error);

/// Plans every rule of `config` and writes the report to `report`: one block per rule, in
/// configuration order, then a summary line. Connects once to `conninfo` (as built by
/// BuildConninfo from `config.database`) and runs EXPLAIN (VERBOSE, FORMAT JSON) of each
/// rule in a READ ONLY transaction that is rolled back. It never runs a rule's statement,
/// because it never uses EXPLAIN ANALYZE. A rule that cannot be planned is reported with
/// the server's message, and the others are still planned. Connection failures go to
/// `errors`, naming the DSN without its password. Returns 0 when every rule was planned
/// and 1 otherwise.
int ExplainRules(const Config& config, const std::string& conninfo, std::ostream& report,
                 std::ostream& errors);

}  // namespace koji_exporter
