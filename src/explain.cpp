// Runs EXPLAIN for each rule through libpqxx 6.4 and formats the report. PostgreSQL's
// jsonpath walks the JSON plan, so this file needs no JSON parser.
#include "koji_exporter/explain.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <pqxx/pqxx>
#include <set>
#include <stdexcept>
#include <utility>

#include "koji_exporter/conninfo.hpp"
#include "koji_exporter/incremental_rule.hpp"

namespace koji_exporter {
namespace {

// VERBOSE adds the "Schema" of each scanned table, which distinguishes tables of the
// same name in different schemas. Without ANALYZE, EXPLAIN only plans the statement.
constexpr const char* kExplainPrefix = "EXPLAIN (VERBOSE, FORMAT JSON) ";

// $1 is EXPLAIN's output: an array holding one object whose "Plan" is the top node.
constexpr const char* kPlanTotalsQuery =
    "SELECT ($1::jsonb #>> '{0,Plan,Total Cost}')::float8,"
    "       ($1::jsonb #>> '{0,Plan,Plan Rows}')::float8";

// Every node of the plan tree that names a table, in the order of the JSON text, with the
// table's row estimate. Strict mode keeps `.**` from visiting array elements twice.
constexpr const char* kTableScansQuery = R"(
SELECT scan.node ->> 'Node Type',
       scan.node ->> 'Schema',
       scan.node ->> 'Relation Name',
       coalesce(c.reltuples, -1)::float8
FROM jsonb_path_query($1::jsonb, 'strict $.** ? (exists (@."Relation Name"))')
         WITH ORDINALITY AS scan (node, position)
LEFT JOIN pg_namespace n ON n.nspname = scan.node ->> 'Schema'
LEFT JOIN pg_class c ON c.relnamespace = n.oid
                    AND c.relname = scan.node ->> 'Relation Name'
ORDER BY scan.position)";

constexpr const char* kSequentialScan = "Seq Scan";

bool IsIndexScan(const std::string& node_type) {
  return node_type == "Index Scan" || node_type == "Index Only Scan" ||
         node_type == "Bitmap Heap Scan";
}

// Inserts a comma between each group of three digits of a whole number.
std::string GroupThousands(const std::string& digits) {
  std::string grouped;
  const std::size_t first_group = digits.size() % 3 == 0 ? 3 : digits.size() % 3;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i >= first_group && (i - first_group) % 3 == 0) grouped += ',';
    grouped += digits[i];
  }
  return grouped;
}

// Formats a row estimate as "2,300,000".
std::string FormatRows(double rows) {
  return GroupThousands(fmt::format("{:.0f}", std::max(0.0, rows)));
}

// Formats a cost as "12,345.67", with the two decimals that EXPLAIN prints.
std::string FormatCost(double cost) {
  const std::string text = fmt::format("{:.2f}", std::max(0.0, cost));
  const std::size_t point = text.find('.');
  return GroupThousands(text.substr(0, point)) + text.substr(point);
}

// Tables outside "public", where Koji keeps its own, are named with their schema.
std::string TableName(const TableScan& scan) {
  if (scan.schema.empty() || scan.schema == "public") return scan.table;
  return scan.schema + "." + scan.table;
}

// Formats a scanned table as "task (2,300,000 rows)" or "task (size unknown, never analyzed)".
std::string DescribeScannedTable(const TableScan& scan) {
  if (scan.table_rows < 0) return TableName(scan) + " (size unknown, never analyzed)";
  return fmt::format("{} ({} rows)", TableName(scan), FormatRows(scan.table_rows));
}

// Formats a block's first line as `queries/tasks.yaml:2: rule "tasks"`, the form of the
// loader's messages.
std::string Heading(const Rule& rule) {
  return fmt::format("{}:{}: rule \"{}\"\n", rule.mark.file, rule.mark.line, rule.name);
}

// Joins the lines of a libpq or server message into one, without libpq's "ERROR:  " prefix.
std::string OneLine(const std::string& message) {
  std::string text = message;
  if (text.rfind("ERROR:  ", 0) == 0) text.erase(0, 8);
  std::string line;
  bool space_pending = false;
  for (char c : text) {
    if (c == '\n' || c == '\t' || c == ' ' || c == '\r') {
      space_pending = !line.empty();
      continue;
    }
    if (space_pending) line += ' ';
    space_pending = false;
    line += c;
  }
  return line;
}

// Formats the first line of the server's message with its SQLSTATE. The lines after it
// point into the EXPLAIN statement, whose positions do not match the rule's own lines.
std::string DescribeSqlError(const pqxx::sql_error& error) {
  const std::string what = error.what();
  const std::string first_line = OneLine(what.substr(0, what.find('\n')));
  if (error.sqlstate().empty()) return first_line;
  return fmt::format("sqlstate {}: {}", error.sqlstate(), first_line);
}

// Describes the database for messages: its DSN with the password hidden, or where libpq
// takes the connection settings from.
std::string DescribeDatabase(const DatabaseConfig& database) {
  if (database.dsn.empty()) return "named by the PG* environment variables";
  return fmt::format("\"{}\"", RedactConninfo(database.dsn));
}

// Plans `rule` in a READ ONLY transaction that is rolled back, with the rule's own
// statement and lock timeouts, and reads the estimates out of the JSON plan. Throws the
// libpqxx exceptions of the server's errors.
PlanEstimate PlanStatement(pqxx::connection& connection, const Rule& rule, const std::string& sql,
                           const std::vector<std::string>& parameters) {
  pqxx::read_transaction transaction(connection);
  transaction.exec0(fmt::format("SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
                                rule.timeout.count(),
                                std::max<long long>(1, rule.timeout.count() / 2)));
  // The extended protocol accepts one statement only, as when the rule runs.
  const pqxx::row explained = transaction.exec_params1(
      kExplainPrefix + sql, pqxx::prepare::make_dynamic_params(parameters));
  const std::string plan_json = explained[0].c_str();

  PlanEstimate plan;
  const pqxx::row totals = transaction.exec_params1(kPlanTotalsQuery, plan_json);
  plan.total_cost = totals[0].as<double>(0.0);
  plan.rows = totals[1].as<double>(0.0);
  for (const auto& row : transaction.exec_params(kTableScansQuery, plan_json)) {
    plan.scans.push_back(TableScan{row[0].as<std::string>(""), row[1].as<std::string>(""),
                                   row[2].as<std::string>(""), row[3].as<double>(-1.0)});
  }
  transaction.abort();
  return plan;
}

// Plans a plain rule's statement, or the statements of an incremental rule's runs after
// the start, summed: those decide what the rule costs every interval.
PlanEstimate PlanRule(pqxx::connection& connection, const Rule& rule) {
  if (!rule.incremental) return PlanStatement(connection, rule, rule.sql, {});
  // The statements of a run are planned with keys near the newest, as they will run.
  long long newest_key = 0;
  {
    pqxx::read_transaction transaction(connection);
    // This statement runs, so it gets the rule's timeout.
    transaction.exec(fmt::format("SET LOCAL statement_timeout = {}", rule.timeout.count()));
    const pqxx::result newest =
        transaction.exec_params(IncrementalNewestKeyStatement(rule), 0);
    if (!newest.empty() && !newest[0][0].is_null()) {
      const std::string text = newest[0][0].c_str();
      char* end = nullptr;
      errno = 0;
      newest_key = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || errno == ERANGE) {
        throw std::runtime_error(fmt::format(
            "incremental.key \"{}\" must name an integer column, but its newest value is "
            "\"{}\"; fix the rule at {}:{}",
            rule.incremental->key_column, text, rule.mark.file, rule.mark.line));
      }
    }
    transaction.abort();
  }
  PlanEstimate total;
  for (const auto& statement : IncrementalRunStatements(rule, newest_key)) {
    const PlanEstimate plan = PlanStatement(connection, rule, statement.sql, statement.parameters);
    total.total_cost += plan.total_cost;
    total.rows += plan.rows;
    total.scans.insert(total.scans.end(), plan.scans.begin(), plan.scans.end());
  }
  return total;
}

// Describes the one-time sum of an incremental rule at start, whose full scan is expected.
std::string DescribeSeed(pqxx::connection& connection, const Rule& rule) {
  const IncrementalStatement seed = IncrementalSeedStatement(rule);
  const PlanEstimate plan = PlanStatement(connection, rule, seed.sql, seed.parameters);
  std::string line = fmt::format("  once at start (a full read is expected there): estimated cost {}",
                                 FormatCost(plan.total_cost));
  for (const auto& scan : CostlyScans(plan)) {
    line += fmt::format(", sequential scan of {}", DescribeScannedTable(scan));
  }
  return line + "\n";
}

}  // namespace

std::vector<TableScan> CostlyScans(const PlanEstimate& plan) {
  std::vector<TableScan> costly;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& scan : plan.scans) {
    if (scan.node_type != kSequentialScan) continue;
    if (scan.table_rows >= 0 && scan.table_rows <= kLargeTableRows) continue;
    if (seen.insert({scan.schema, scan.table}).second) costly.push_back(scan);
  }
  return costly;
}

std::string Verdict(const PlanEstimate& plan) {
  // Several tables are only named, because the lines above the verdict give their sizes.
  const std::vector<TableScan> costly = CostlyScans(plan);
  if (costly.size() == 1) return "warning: sequential scan of " + DescribeScannedTable(costly[0]);
  if (costly.size() > 1) {
    std::string tables;
    for (const auto& scan : costly) {
      if (!tables.empty()) tables += ", ";
      tables += TableName(scan);
    }
    return "warning: sequential scans of " + tables;
  }
  if (plan.scans.empty()) return "ok: reads no table";

  const auto is_sequential = [](const TableScan& scan) {
    return scan.node_type == kSequentialScan;
  };
  if (std::any_of(plan.scans.begin(), plan.scans.end(), is_sequential)) {
    return fmt::format("ok: sequential scans of small tables only (up to {} rows)",
                       FormatRows(kLargeTableRows));
  }
  const auto is_index = [](const TableScan& scan) { return IsIndexScan(scan.node_type); };
  if (std::all_of(plan.scans.begin(), plan.scans.end(), is_index)) {
    return "ok: index scans only";
  }
  return "ok: no sequential scan";
}

std::string FormatPlanReport(const Rule& rule, const PlanEstimate& plan) {
  std::string block = Heading(rule);
  block += fmt::format("  estimated cost {}, estimated rows {}\n", FormatCost(plan.total_cost),
                       FormatRows(plan.rows));
  for (const auto& scan : CostlyScans(plan)) {
    block += fmt::format("  sequential scan of {}\n", DescribeScannedTable(scan));
  }
  block += "  " + Verdict(plan) + "\n";
  return block;
}

std::string FormatFailureReport(const Rule& rule, const std::string& error) {
  return Heading(rule) + "  error: " + error + "\n";
}

int ExplainRules(const Config& config, const std::string& conninfo, std::ostream& report,
                 std::ostream& errors) {
  std::unique_ptr<pqxx::connection> connection;
  try {
    connection = std::make_unique<pqxx::connection>(conninfo);
  } catch (const pqxx::failure& error) {
    errors << fmt::format("koji_exporter: cannot connect to the database {}: {}\n",
                          DescribeDatabase(config.database), OneLine(error.what()));
    return 1;
  }

  std::size_t warned = 0;
  std::size_t failed = 0;
  for (std::size_t i = 0; i < config.rules.size(); ++i) {
    const Rule& rule = config.rules[i];
    if (i > 0) report << '\n';
    try {
      const PlanEstimate plan = PlanRule(*connection, rule);
      if (!CostlyScans(plan).empty()) ++warned;
      std::string block = FormatPlanReport(rule, plan);
      if (rule.incremental) {
        // The start's sum goes before the verdict, which is about every run.
        const std::size_t verdict = block.rfind("  ", block.size() - 2);
        block.insert(verdict, "  incremental: the cost above and the verdict below are those of "
                              "each run\n" + DescribeSeed(*connection, rule));
      }
      report << block;
    } catch (const pqxx::broken_connection& error) {
      // A lost session cannot plan the remaining rules either.
      report << FormatFailureReport(rule, OneLine(error.what()));
      errors << fmt::format(
          "koji_exporter: lost the connection to the database {}; {} rule(s) not explained\n",
          DescribeDatabase(config.database), config.rules.size() - i);
      return 1;
    } catch (const pqxx::sql_error& error) {
      ++failed;
      report << FormatFailureReport(rule, DescribeSqlError(error));
    } catch (const std::exception& error) {
      // pqxx::failure, and an incremental rule whose newest key is not an integer.
      ++failed;
      report << FormatFailureReport(rule, OneLine(error.what()));
    }
  }

  report << fmt::format("\n{} rule(s): {} ok, {} with warnings, {} failed\n", config.rules.size(),
                        config.rules.size() - warned - failed, warned, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace koji_exporter
