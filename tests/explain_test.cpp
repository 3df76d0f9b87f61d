// The --explain report without a database: which scans earn a warning, the verdicts and
// the exact text of a rule's block.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "koji_exporter/explain.hpp"

namespace koji_exporter {
namespace {

TableScan Scan(const std::string& node_type, const std::string& table, double table_rows,
               const std::string& schema = "public") {
  return TableScan{node_type, schema, table, table_rows};
}

PlanEstimate Plan(std::vector<TableScan> scans) {
  PlanEstimate plan;
  plan.total_cost = 1234567.891;
  plan.rows = 450;
  plan.scans = std::move(scans);
  return plan;
}

Rule TasksRule() {
  Rule rule;
  rule.name = "tasks";
  rule.mark = SourceMark{"queries/tasks.yaml", 2, 5};
  return rule;
}

}  // namespace

TEST_SUITE("explain") {
  TEST_CASE("costly scans skip small and index scans") {
    const PlanEstimate plan = Plan({
        Scan("Seq Scan", "task", 2300000),
        Scan("Index Scan", "build", 5000000),
        Scan("Seq Scan", "host", 300),
        Scan("Seq Scan", "channels", kLargeTableRows),
        Scan("Seq Scan", "tag_listing", -1),
        Scan("Seq Scan", "task", 2300000),
        Scan("Seq Scan", "task", 900000, "archive"),
    });
    const std::vector<TableScan> costly = CostlyScans(plan);
    REQUIRE(costly.size() == 3);
    CHECK(costly[0].table == "task");
    CHECK(costly[0].schema == "public");
    CHECK(costly[1].table == "tag_listing");
    CHECK(costly[2].table == "task");
    CHECK(costly[2].schema == "archive");
  }

  TEST_CASE("verdict for each kind of plan") {
    struct Case {
      const char* name;
      std::vector<TableScan> scans;
      const char* verdict;
    };
    const std::vector<Case> cases = {
        {"one large table", {Scan("Seq Scan", "task", 2300000)},
         "warning: sequential scan of task (2,300,000 rows)"},
        {"table never analyzed", {Scan("Seq Scan", "tag_listing", -1)},
         "warning: sequential scan of tag_listing (size unknown, never analyzed)"},
        {"several large tables",
         {Scan("Seq Scan", "task", 2300000), Scan("Seq Scan", "build", 200000, "koji")},
         "warning: sequential scans of task, koji.build"},
        {"no table", {}, "ok: reads no table"},
        {"index scans",
         {Scan("Index Scan", "task", 2300000), Scan("Bitmap Heap Scan", "build", 200000),
          Scan("Index Only Scan", "tag_listing", 300000)},
         "ok: index scans only"},
        {"small sequential scans",
         {Scan("Seq Scan", "host", 300), Scan("Index Scan", "task", 2300000)},
         "ok: sequential scans of small tables only (up to 100,000 rows)"},
        {"other scan types", {Scan("Tid Scan", "task", 2300000)}, "ok: no sequential scan"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.name);
      CHECK(Verdict(Plan(c.scans)) == c.verdict);
    }
  }

  TEST_CASE("plan report lists costly scans") {
    const PlanEstimate plan = Plan({Scan("Seq Scan", "task", 2300000),
                                    Scan("Seq Scan", "channels", 12),
                                    Scan("Seq Scan", "tag_listing", -1)});
    CHECK(FormatPlanReport(TasksRule(), plan) ==
          "queries/tasks.yaml:2: rule \"tasks\"\n"
          "  estimated cost 1,234,567.89, estimated rows 450\n"
          "  sequential scan of task (2,300,000 rows)\n"
          "  sequential scan of tag_listing (size unknown, never analyzed)\n"
          "  warning: sequential scans of task, tag_listing\n");
  }

  TEST_CASE("plan report without costly scans") {
    PlanEstimate plan = Plan({Scan("Index Scan", "task", 2300000)});
    plan.total_cost = 8.3;
    plan.rows = 1;
    CHECK(FormatPlanReport(TasksRule(), plan) ==
          "queries/tasks.yaml:2: rule \"tasks\"\n"
          "  estimated cost 8.30, estimated rows 1\n"
          "  ok: index scans only\n");
  }

  TEST_CASE("plan report groups thousands") {
    struct Case {
      double cost;
      double rows;
      const char* line;
    };
    const std::vector<Case> cases = {
        {0, 0, "  estimated cost 0.00, estimated rows 0\n"},
        {999.994, 999, "  estimated cost 999.99, estimated rows 999\n"},
        {999.996, 1000, "  estimated cost 1,000.00, estimated rows 1,000\n"},
        {123456.5, 99999.6, "  estimated cost 123,456.50, estimated rows 100,000\n"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.line);
      PlanEstimate plan;
      plan.total_cost = c.cost;
      plan.rows = c.rows;
      const std::string report = FormatPlanReport(TasksRule(), plan);
      CHECK(report.find(c.line) != std::string::npos);
    }
  }

  TEST_CASE("failure report shows the error") {
    CHECK(FormatFailureReport(TasksRule(),
                              "sqlstate 42P01: relation \"task\" does not exist") ==
          "queries/tasks.yaml:2: rule \"tasks\"\n"
          "  error: sqlstate 42P01: relation \"task\" does not exist\n");
  }
}

}  // namespace koji_exporter
