// Tests for the rule loader: the exact message for every kind of problem, the fields of
// valid rules, durations, and LoadConfig over temporary directories and the fixtures.
#include "koji_exporter/rule_loader.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace koji_exporter {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// Joins messages one per line, so that a failed comparison prints both lists readably.
std::string Lines(const std::vector<std::string>& messages) {
  std::string text;
  for (const auto& message : messages) text += message + "\n";
  return text;
}

// Returns the problems ParseRuleFile reports for `yaml` in a file named hosts.yaml, or
// nothing if it accepts the file.
std::vector<std::string> RuleFileProblems(const std::string& yaml) {
  try {
    ParseRuleFile(yaml, "hosts.yaml", RuleDefaults{});
  } catch (const ConfigError& error) {
    return error.problems();
  }
  return {};
}

std::vector<std::string> ConfigProblems(const std::string& path) {
  try {
    LoadConfig(path);
  } catch (const ConfigError& error) {
    return error.problems();
  }
  return {};
}

struct ProblemCase {
  std::string name;
  std::string yaml;
  std::vector<std::string> expected;
};

void CheckProblemCases(const std::vector<ProblemCase>& cases) {
  for (const auto& row : cases) {
    CAPTURE(row.name);
    CHECK(Lines(RuleFileProblems(row.yaml)) == Lines(row.expected));
  }
}

// A rule file with one rule and one metric whose name and type vary; the name is on line 5,
// column 15.
std::string OneMetric(const std::string& name, const std::string& type) {
  return "rules:\n"
         "  - name: hosts\n"
         "    sql: SELECT 1 AS enabled\n"
         "    metrics:\n"
         "      - name: " +
         name +
         "\n"
         "        type: " +
         type +
         "\n"
         "        help: Enabled.\n"
         "        value: enabled\n";
}

// A rule file with one metric whose labels vary; `labels` is a flow list starting at line 9,
// column 17.
std::string WithLabels(const std::string& labels) {
  return "rules:\n"
         "  - name: hosts\n"
         "    sql: SELECT 1 AS enabled\n"
         "    metrics:\n"
         "      - name: koji_hosts_enabled\n"
         "        type: gauge\n"
         "        help: Enabled.\n"
         "        value: enabled\n"
         "        labels: " +
         labels + "\n";
}

// A rule file whose metric has labels [host] and the static labels given as lines 11 and
// on, indented by 10 spaces.
std::string WithStaticLabels(const std::string& lines) {
  return WithLabels("[host]") + "        static_labels:\n" + lines;
}

// A rule file whose rule sets interval or timeout on line 3 and, if given, line 4. An
// interval value starts at column 15 and a timeout value at column 14.
std::string WithTiming(const std::string& line3, const std::string& line4 = "") {
  return "rules:\n"
         "  - name: hosts\n" +
         line3 + "\n" + (line4.empty() ? "" : line4 + "\n") +
         "    sql: SELECT 1 AS enabled\n"
         "    metrics:\n"
         "      - name: koji_hosts_enabled\n"
         "        type: gauge\n"
         "        help: Enabled.\n"
         "        value: enabled\n";
}

// A temporary directory, removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "koji_exporter_test.XXXXXX").string();
    const char* created = mkdtemp(pattern.data());
    REQUIRE(created != nullptr);
    path_ = created;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Returns the absolute path of `relative` inside the directory.
  std::string Path(const std::string& relative) const { return path_ + "/" + relative; }

  // Writes `text` to `relative`, creating its directories, and returns the absolute path.
  std::string Write(const std::string& relative, const std::string& text) const {
    const fs::path file = Path(relative);
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
    return file.string();
  }

 private:
  std::string path_;
};

// A valid rule file whose rule is on line 2, column 5 and whose metric is on line 5,
// column 9.
std::string ValidRuleFile(const std::string& rule, const std::string& metric) {
  return "rules:\n"
         "  - name: " +
         rule +
         "\n"
         "    sql: SELECT 1 AS enabled\n"
         "    metrics:\n"
         "      - name: " +
         metric +
         "\n"
         "        type: gauge\n"
         "        help: Enabled.\n"
         "        value: enabled\n";
}

TEST_SUITE("rule_loader") {
  TEST_CASE("yaml syntax problems give file, line and column") {
    CheckProblemCases({
        {"unclosed flow list",
         "rules:\n"
         "  - name: hosts\n"
         "    labels: [host\n",
         {"hosts.yaml:4:1: invalid YAML: end of sequence flow not found"}},
        {"tab indentation",
         "rules:\n"
         "  - name: hosts\n"
         "\tsql: SELECT 1\n",
         {"hosts.yaml:3:1: invalid YAML: illegal tab when looking for indentation"}},
        {"unterminated double quote swallows the rest of the file",
         "rules:\n"
         "  - name: hosts\n"
         "    sql: \"SELECT 1 AS enabled\n"
         "    metrics:\n"
         "      - name: koji_hosts_enabled\n",
         {"hosts.yaml:3:10: invalid YAML: quoted string has no closing quote, so it runs to "
          "the end of the file"}},
        {"unterminated single quote after an escaped quote",
         "rules:\n"
         "  - name: 'it''s\n"
         "    sql: SELECT 1\n",
         {"hosts.yaml:2:11: invalid YAML: quoted string has no closing quote, so it runs to "
          "the end of the file"}},
        {"second document",
         ValidRuleFile("hosts", "koji_hosts_enabled") + "---\nrules: []\n",
         {"hosts.yaml:10:1: a file holds one YAML document; remove the \"---\" line and merge "
          "this document into the first"}},
    });
  }

  TEST_CASE("closed quotes and an empty trailing document are accepted") {
    CHECK(RuleFileProblems("rules:\n"
                           "  - name: \"hosts\"\n"
                           "    sql: 'SELECT ''t'' AS enabled'\n"
                           "    metrics:\n"
                           "      - name: koji_hosts_enabled\n"
                           "        type: gauge\n"
                           "        help: \"Whether the host is \\\"enabled\\\".\"\n"
                           "        value: enabled\n"
                           "---\n")
              .empty());
  }

  TEST_CASE("duplicate keys are reported in every mapping") {
    CheckProblemCases({
        {"rule key",
         "rules:\n"
         "  - name: hosts\n"
         "    sql: SELECT 1 AS enabled\n"
         "    sql: SELECT 2 AS enabled\n"
         "    metrics:\n"
         "      - name: koji_hosts_enabled\n"
         "        type: gauge\n"
         "        help: Enabled.\n"
         "        value: enabled\n",
         {"hosts.yaml:4:5: rule \"hosts\": duplicate key \"sql\" (first at hosts.yaml:3:5)"}},
        {"metric key",
         OneMetric("koji_hosts_enabled", "gauge") + "        value: ready\n",
         {"hosts.yaml:9:9: rule \"hosts\": duplicate key \"value\" (first at hosts.yaml:8:9)"}},
        {"static label",
         WithStaticLabels("          site: a\n"
                          "          site: b\n"),
         {"hosts.yaml:12:11: rule \"hosts\": duplicate key \"site\" (first at hosts.yaml:11:11)"}},
        {"top level, outside any rule",
         "rules: []\n"
         "rules: []\n",
         {"hosts.yaml:2:1: duplicate key \"rules\" (first at hosts.yaml:1:1)"}},
        {"rule without a valid name",
         "rules:\n"
         "  - sql: SELECT 1\n"
         "    sql: SELECT 2\n",
         {"hosts.yaml:2:5: missing required key \"name\"",
          "hosts.yaml:2:5: missing required key \"metrics\"",
          "hosts.yaml:3:5: duplicate key \"sql\" (first at hosts.yaml:2:5)"}},
    });
  }

  TEST_CASE("unknown keys are reported with the allowed ones") {
    CheckProblemCases({
        {"metric key",
         OneMetric("koji_hosts_enabled", "gauge") + "        lables: [host]\n",
         {"hosts.yaml:9:9: rule \"hosts\": unknown key \"lables\" (allowed: name, type, help, "
          "value, labels, static_labels)"}},
        {"rule key",
         WithTiming("    intervall: 30s"),
         {"hosts.yaml:3:5: rule \"hosts\": unknown key \"intervall\" (allowed: name, interval, "
          "timeout, stale_after, max_series, incremental, sql, metrics)"}},
        {"top-level key",
         "rule:\n"
         "  - name: hosts\n",
         {"hosts.yaml:1:1: unknown key \"rule\" (allowed: rules)",
          "hosts.yaml:1:1: missing required key \"rules\""}},
        {"key that is not a string",
         OneMetric("koji_hosts_enabled", "gauge") + "        [a]: 1\n",
         {"hosts.yaml:9:9: rule \"hosts\": a key must be a string, but it is a list"}},
    });
  }

  TEST_CASE("values of the wrong type are reported with what was found") {
    CheckProblemCases({
        {"labels as a string",
         WithLabels("host"),
         {"hosts.yaml:9:17: rule \"hosts\": \"labels\" must be a list of column names, but it "
          "is the string \"host\""}},
        {"labels without a value",
         WithLabels(""),
         {"hosts.yaml:9:9: rule \"hosts\": \"labels\" must be a list of column names, but it "
          "has no value"}},
        {"label that is a map",
         WithLabels("[host, {a: b}]"),
         {"hosts.yaml:9:24: rule \"hosts\": item 2 of \"labels\" must be a column name, but it "
          "is a map"}},
        {"label list containing itself",
         WithLabels("&l [host, *l]"),
         {"hosts.yaml:9:17: rule \"hosts\": item 2 of \"labels\" must be a column name, but it "
          "is a list"}},
        {"metrics as a map",
         "rules:\n"
         "  - name: hosts\n"
         "    sql: SELECT 1 AS enabled\n"
         "    metrics:\n"
         "      name: koji_hosts_enabled\n",
         {"hosts.yaml:5:7: rule \"hosts\": \"metrics\" must be a list of metrics, but it is a "
          "map"}},
        {"metric as a string",
         "rules:\n"
         "  - name: hosts\n"
         "    sql: SELECT 1 AS enabled\n"
         "    metrics: [koji_hosts_enabled]\n",
         {"hosts.yaml:4:15: rule \"hosts\": item 1 of \"metrics\" must be a map, but it is the "
          "string \"koji_hosts_enabled\""}},
        {"rules as a string",
         "rules: hosts\n",
         {"hosts.yaml:1:8: \"rules\" must be a list of rules, but it is the string \"hosts\""}},
        {"rule as a string",
         "rules:\n"
         "  - hosts\n",
         {"hosts.yaml:2:5: item 1 of \"rules\" must be a map, but it is the string \"hosts\""}},
        {"file as a list",
         "- name: hosts\n",
         {"hosts.yaml:1:1: a rule file must be a map with the key \"rules\", but it is a list"}},
        {"sql as a list",
         "rules:\n"
         "  - name: hosts\n"
         "    sql: [SELECT 1]\n"
         "    metrics: []\n",
         {"hosts.yaml:3:10: rule \"hosts\": \"sql\" must be a string, but it is a list",
          "hosts.yaml:4:14: rule \"hosts\": \"metrics\" is empty; add at least one metric"}},
        {"long string shortened",
         "rules:\n"
         "  - name: hosts\n"
         "    sql: SELECT 1\n"
         "    metrics: SELECT h.name AS host, hc.enabled FROM host h JOIN host_config hc\n",
         {"hosts.yaml:4:14: rule \"hosts\": \"metrics\" must be a list of metrics, but it is the "
          "string \"SELECT h.name AS host, hc.enabled FROM h...\""}},
    });
  }

  TEST_CASE("missing required keys are reported at their mapping") {
    CheckProblemCases({
        {"empty file", "", {"hosts.yaml:1:1: missing required key \"rules\""}},
        {"comment only", "# no rules yet\n", {"hosts.yaml:1:1: missing required key \"rules\""}},
        {"rule keys",
         "rules:\n"
         "  - interval: 30s\n",
         {"hosts.yaml:2:5: missing required key \"name\"",
          "hosts.yaml:2:5: missing required key \"sql\"",
          "hosts.yaml:2:5: missing required key \"metrics\""}},
        {"metric keys",
         "rules:\n"
         "  - name: hosts\n"
         "    sql: SELECT 1 AS enabled\n"
         "    metrics:\n"
         "      - labels: [host]\n",
         {"hosts.yaml:5:9: rule \"hosts\": missing required key \"name\"",
          "hosts.yaml:5:9: rule \"hosts\": missing required key \"type\"",
          "hosts.yaml:5:9: rule \"hosts\": missing required key \"help\"",
          "hosts.yaml:5:9: rule \"hosts\": missing required key \"value\""}},
    });
  }

  TEST_CASE("rule names, sql and metrics lists are checked") {
    CheckProblemCases({
        {"upper case name",
         ValidRuleFile("Hosts", "koji_hosts_enabled"),
         {"hosts.yaml:2:11: invalid rule name \"Hosts\": use snake_case matching "
          "[a-z_][a-z0-9_]*"}},
        {"name with a dash",
         ValidRuleFile("hosts-up", "koji_hosts_enabled"),
         {"hosts.yaml:2:11: invalid rule name \"hosts-up\": use snake_case matching "
          "[a-z_][a-z0-9_]*"}},
        {"name starting with a digit",
         ValidRuleFile("2hosts", "koji_hosts_enabled"),
         {"hosts.yaml:2:11: invalid rule name \"2hosts\": use snake_case matching "
          "[a-z_][a-z0-9_]*"}},
        {"duplicate rule name in one file",
         ValidRuleFile("hosts", "koji_hosts_enabled") +
             ValidRuleFile("hosts", "koji_hosts_ready").substr(7),
         {"hosts.yaml:9:5: rule \"hosts\": duplicate rule name (first defined at "
          "hosts.yaml:2:5)"}},
        {"empty sql",
         "rules:\n"
         "  - name: hosts\n"
         "    sql: \"\"\n"
         "    metrics: []\n",
         {"hosts.yaml:3:10: rule \"hosts\": \"sql\" is empty; write the query whose columns feed "
          "the metrics",
          "hosts.yaml:4:14: rule \"hosts\": \"metrics\" is empty; add at least one metric"}},
        {"blank sql",
         "rules:\n"
         "  - name: hosts\n"
         "    sql: |\n"
         "      \n"
         "    metrics: []\n",
         {"hosts.yaml:3:10: rule \"hosts\": \"sql\" is empty; write the query whose columns feed "
          "the metrics",
          "hosts.yaml:5:14: rule \"hosts\": \"metrics\" is empty; add at least one metric"}},
    });
  }

  TEST_CASE("input that made yaml-cpp loop is rejected") {
    // yaml-cpp 0.7's LoadAll never returned for this input (found by fuzzing).
    CHECK(RuleFileProblems(",unes\n:\n d\n") ==
          std::vector<std::string>{"hosts.yaml:1:1: missing required key \"rules\""});
  }

  TEST_CASE("sql must be a query") {
    const auto rule_with_sql = [](const std::string& sql) {
      return "rules:\n"
             "  - name: hosts\n"
             "    sql: " + sql + "\n"
             "    metrics: []\n";
    };
    const auto expected = [](const std::string& found) {
      return std::vector<std::string>{
          "hosts.yaml:3:10: rule \"hosts\": \"sql\" must be one read-only query starting with "
          "SELECT, WITH, VALUES or TABLE, not \"" + found + "\"",
          "hosts.yaml:4:14: rule \"hosts\": \"metrics\" is empty; add at least one metric"};
    };
    CheckProblemCases({
        {"insert", rule_with_sql("INSERT INTO host VALUES (1)"), expected("INSERT")},
        {"copy to program", rule_with_sql("\"COPY host TO PROGRAM 'id'\""), expected("COPY")},
        {"set role after a comment", rule_with_sql("\"-- harmless\\nSET ROLE postgres\""),
         expected("SET")},
        {"lower case delete in parentheses", rule_with_sql("\"(delete from host)\""),
         expected("DELETE")},
        {"create after a block comment", rule_with_sql("\"/* a /* nested */ one */ CREATE TABLE x ()\""),
         expected("CREATE")},
    });
    for (const std::string sql :
         {"SELECT 1 AS v", "with t AS (SELECT 1 AS v) SELECT v FROM t", "\"(SELECT 1 AS v)\"",
          "VALUES (1)", "TABLE host", "\"-- comment\\n/* block */ select 1\""}) {
      CAPTURE(sql);
      const auto problems = RuleFileProblems(rule_with_sql(sql));
      REQUIRE(problems.size() == 1);
      CHECK(problems[0].find("\"metrics\" is empty") != std::string::npos);
    }
  }

  TEST_CASE("metric names and types follow Prometheus conventions") {
    CheckProblemCases({
        {"dash",
         OneMetric("koji-hosts", "gauge"),
         {"hosts.yaml:5:15: rule \"hosts\": invalid metric name \"koji-hosts\": use letters, "
          "digits and underscores, not starting with a digit"}},
        {"leading digit",
         OneMetric("1koji", "gauge"),
         {"hosts.yaml:5:15: rule \"hosts\": invalid metric name \"1koji\": use letters, digits "
          "and underscores, not starting with a digit"}},
        {"colon",
         OneMetric("koji:hosts_enabled", "gauge"),
         {"hosts.yaml:5:15: rule \"hosts\": invalid metric name \"koji:hosts_enabled\": colons "
          "are reserved for recording rules"}},
        {"self-metric prefix",
         OneMetric("koji_exporter_hosts", "gauge"),
         {"hosts.yaml:5:15: rule \"hosts\": metric name \"koji_exporter_hosts\" starts with "
          "\"koji_exporter_\", which is reserved for the exporter's own metrics"}},
        {"unknown type",
         OneMetric("koji_hosts_enabled", "gague"),
         {"hosts.yaml:6:15: rule \"hosts\": type \"gague\" is not one of: counter, gauge"}},
        {"counter without _total",
         OneMetric("koji_tasks_finished", "counter"),
         {"hosts.yaml:5:15: rule \"hosts\": counter \"koji_tasks_finished\" must end in "
          "\"_total\""}},
        {"gauge with _total",
         OneMetric("koji_tasks_total", "gauge"),
         {"hosts.yaml:5:15: rule \"hosts\": gauge \"koji_tasks_total\" must not end in "
          "\"_total\"; make it a counter or rename it"}},
        {"counter with _total", OneMetric("koji_tasks_finished_total", "counter"), {}},
        {"duplicate metric in one rule",
         OneMetric("koji_hosts_enabled", "gauge") + "      - name: koji_hosts_enabled\n"
                                                    "        type: gauge\n"
                                                    "        help: Enabled again.\n"
                                                    "        value: enabled\n",
         {"hosts.yaml:9:9: rule \"hosts\": duplicate metric \"koji_hosts_enabled\" (first "
          "defined at hosts.yaml:5:9)"}},
        {"duplicate metric in another rule",
         ValidRuleFile("hosts", "koji_hosts_enabled") +
             ValidRuleFile("hosts_again", "koji_hosts_enabled").substr(7),
         {"hosts.yaml:12:9: rule \"hosts_again\": duplicate metric \"koji_hosts_enabled\" "
          "(first defined at hosts.yaml:5:9)"}},
    });
  }

  TEST_CASE("help and value must not be empty") {
    const std::string yaml = OneMetric("koji_hosts_enabled", "gauge");
    // Replaces the first line of the metric that starts with `prefix` by `line`.
    auto with_line = [&](const std::string& prefix, const std::string& line) {
      const auto start = yaml.find("        " + prefix) + 8;
      return std::string(yaml).replace(start, yaml.find('\n', start) - start, line);
    };
    CheckProblemCases({
        {"empty help",
         with_line("help:", "help: \"\""),
         {"hosts.yaml:7:15: rule \"hosts\": \"help\" is empty; say what the metric measures"}},
        {"blank help",
         with_line("help:", "help: \"   \""),
         {"hosts.yaml:7:15: rule \"hosts\": \"help\" is empty; say what the metric measures"}},
        {"help without a value",
         with_line("help:", "help:"),
         {"hosts.yaml:7:9: rule \"hosts\": \"help\" must be a string, but it has no value"}},
        {"empty value column",
         with_line("value:", "value: \"\""),
         {"hosts.yaml:8:16: rule \"hosts\": \"value\" is empty; name the column that gives the "
          "sample value"}},
    });
  }

  TEST_CASE("metric names with non-base units name the base unit") {
    struct UnitCase {
      std::string name;
      const char* type;
      const char* suffix;
      const char* base_unit;
      const char* suggestion;
    };
    const std::vector<UnitCase> cases = {
        {"koji_task_wait_ms", "gauge", "_ms", "seconds", "koji_task_wait_seconds"},
        {"koji_task_wait_milliseconds", "gauge", "_milliseconds", "seconds",
         "koji_task_wait_seconds"},
        {"koji_task_wait_microseconds", "gauge", "_microseconds", "seconds",
         "koji_task_wait_seconds"},
        {"koji_task_wait_minutes", "gauge", "_minutes", "seconds", "koji_task_wait_seconds"},
        {"koji_task_wait_hours", "gauge", "_hours", "seconds", "koji_task_wait_seconds"},
        {"koji_build_age_days", "gauge", "_days", "seconds", "koji_build_age_seconds"},
        {"koji_archive_size_kb", "gauge", "_kb", "bytes", "koji_archive_size_bytes"},
        {"koji_archive_size_mb", "gauge", "_mb", "bytes", "koji_archive_size_bytes"},
        {"koji_task_wait_ms_total", "counter", "_ms", "seconds", "koji_task_wait_seconds_total"},
    };
    for (const auto& row : cases) {
      CAPTURE(row.name);
      const std::string expected = std::string("hosts.yaml:5:15: rule \"hosts\": metric name \"") +
                                   row.name + "\" ends in the non-base unit \"" + row.suffix +
                                   "\"; convert the value to " + row.base_unit +
                                   " in SQL and name it \"" + row.suggestion + "\"";
      CHECK(Lines(RuleFileProblems(OneMetric(row.name, row.type))) == Lines({expected}));
    }
    CHECK(RuleFileProblems(OneMetric("koji_build_items", "gauge")).empty());
    CHECK(RuleFileProblems(OneMetric("koji_task_wait_seconds", "gauge")).empty());
  }

  TEST_CASE("label columns are valid, unreserved and unique") {
    CheckProblemCases({
        {"invalid",
         WithLabels("[host-name]"),
         {"hosts.yaml:9:18: rule \"hosts\": invalid label name \"host-name\" in \"labels\": use "
          "letters, digits and underscores, not starting with a digit"}},
        {"double underscore",
         WithLabels("[__host]"),
         {"hosts.yaml:9:18: rule \"hosts\": label name \"__host\" in \"labels\" starts with "
          "\"__\", which Prometheus reserves for its own labels"}},
        {"le",
         WithLabels("[le]"),
         {"hosts.yaml:9:18: rule \"hosts\": label name \"le\" in \"labels\" is reserved: it is "
          "the upper bound of a histogram bucket"}},
        {"quantile",
         WithLabels("[quantile]"),
         {"hosts.yaml:9:18: rule \"hosts\": label name \"quantile\" in \"labels\" is reserved: it "
          "is the quantile of a summary"}},
        {"job",
         WithLabels("[job]"),
         {"hosts.yaml:9:18: rule \"hosts\": label name \"job\" in \"labels\" is reserved: "
          "Prometheus attaches it to every scraped series and renames an exported one to "
          "\"exported_job\""}},
        {"instance",
         WithLabels("[instance]"),
         {"hosts.yaml:9:18: rule \"hosts\": label name \"instance\" in \"labels\" is reserved: "
          "Prometheus attaches it to every scraped series and renames an exported one to "
          "\"exported_instance\""}},
        {"type",
         WithLabels("[type]"),
         {"hosts.yaml:9:18: rule \"hosts\": label name \"type\" in \"labels\" is reserved: Koji "
          "has many kinds of type (build, archive, buildroot, checksum), so name the label after "
          "the kind"}},
        {"listed twice",
         WithLabels("[host, host]"),
         {"hosts.yaml:9:24: rule \"hosts\": label \"host\" is listed twice in \"labels\""}},
        {"value column as label",
         WithLabels("[host, enabled]"),
         {"hosts.yaml:8:16: rule \"hosts\": value column \"enabled\" is also listed in "
          "\"labels\"; a column gives either the value or a label"}},
        {"empty list", WithLabels("[]"), {}},
    });
  }

  TEST_CASE("static labels are valid, unreserved and distinct from label columns") {
    CheckProblemCases({
        {"invalid",
         WithStaticLabels("          site-name: main\n"),
         {"hosts.yaml:11:11: rule \"hosts\": invalid label name \"site-name\" in "
          "\"static_labels\": use letters, digits and underscores, not starting with a digit"}},
        {"double underscore",
         WithStaticLabels("          __site: main\n"),
         {"hosts.yaml:11:11: rule \"hosts\": label name \"__site\" in \"static_labels\" starts "
          "with \"__\", which Prometheus reserves for its own labels"}},
        {"reserved",
         WithStaticLabels("          instance: koji01\n"),
         {"hosts.yaml:11:11: rule \"hosts\": label name \"instance\" in \"static_labels\" is "
          "reserved: Prometheus attaches it to every scraped series and renames an exported one "
          "to \"exported_instance\""}},
        {"also a label column",
         WithStaticLabels("          host: koji01\n"),
         {"hosts.yaml:11:11: rule \"hosts\": static label \"host\" is also a label column; keep "
          "one of them"}},
        {"list value",
         WithStaticLabels("          site: [a, b]\n"),
         {"hosts.yaml:11:17: rule \"hosts\": static label \"site\" must be a string, but it is a "
          "list"}},
        {"no value",
         WithStaticLabels("          site:\n"),
         {"hosts.yaml:11:11: rule \"hosts\": static label \"site\" must be a string, but it has "
          "no value"}},
        {"empty value",
         WithStaticLabels("          site: \"\"\n"),
         {"hosts.yaml:11:17: rule \"hosts\": static label \"site\" has an empty value, which "
          "Prometheus treats as no label"}},
        {"list instead of map",
         WithLabels("[host]") + "        static_labels: [site]\n",
         {"hosts.yaml:10:24: rule \"hosts\": \"static_labels\" must be a map of label names to "
          "values, but it is a list"}},
    });
  }

  TEST_CASE("intervals and timeouts are positive and ordered") {
    CheckProblemCases({
        {"no unit",
         WithTiming("    interval: 30"),
         {"hosts.yaml:3:15: rule \"hosts\": invalid interval \"30\": use a Prometheus duration "
          "such as 30s, 5m or 1h30m"}},
        {"space before unit",
         WithTiming("    interval: 30 s"),
         {"hosts.yaml:3:15: rule \"hosts\": invalid interval \"30 s\": use a Prometheus duration "
          "such as 30s, 5m or 1h30m"}},
        {"units out of order",
         WithTiming("    timeout: 1s1m"),
         {"hosts.yaml:3:14: rule \"hosts\": invalid timeout \"1s1m\": use a Prometheus duration "
          "such as 30s, 5m or 1h30m"}},
        {"zero interval",
         WithTiming("    interval: 0s"),
         {"hosts.yaml:3:15: rule \"hosts\": interval \"0s\" must be greater than zero"}},
        {"zero timeout",
         WithTiming("    timeout: 0"),
         {"hosts.yaml:3:14: rule \"hosts\": timeout \"0\" must be greater than zero"}},
        {"negative interval",
         WithTiming("    interval: -5s"),
         {"hosts.yaml:3:15: rule \"hosts\": interval \"-5s\" must be greater than zero"}},
        {"interval as a list",
         WithTiming("    interval: [30s]"),
         {"hosts.yaml:3:15: rule \"hosts\": \"interval\" must be a duration such as 30s, but it "
          "is a list"}},
        {"timeout equal to interval",
         WithTiming("    interval: 30s", "    timeout: 30s"),
         {"hosts.yaml:4:14: rule \"hosts\": timeout \"30s\" must be shorter than interval "
          "\"30s\""}},
        {"timeout longer than interval",
         WithTiming("    timeout: 1m", "    interval: 30s"),
         {"hosts.yaml:3:14: rule \"hosts\": timeout \"1m\" must be shorter than interval "
          "\"30s\""}},
        {"interval shorter than the default timeout",
         WithTiming("    interval: 5s"),
         {"hosts.yaml:3:15: rule \"hosts\": default timeout \"10s\" must be shorter than interval "
          "\"5s\"; set a shorter \"timeout\""}},
        {"timeout longer than the default interval",
         WithTiming("    timeout: 2m"),
         {"hosts.yaml:3:14: rule \"hosts\": timeout \"2m\" must be shorter than the default "
          "interval \"1m\""}},
        {"short interval with shorter timeout",
         WithTiming("    interval: 5s", "    timeout: 2s"),
         {}},
    });
  }

  TEST_CASE("several problems in one file are all reported in file order") {
    const std::string yaml =
        "rules:\n"
        "  - name: hosts\n"
        "    interval: 30\n"
        "    sql: SELECT 1 AS enabled\n"
        "    metrics:\n"
        "      - name: koji_hosts_enabled\n"
        "        type: counter\n"
        "        help: Enabled.\n"
        "        value: enabled\n"
        "        lables: [host]\n"
        "  - name: Tasks\n"
        "    metrics:\n"
        "      - name: koji_tasks\n"
        "        type: gauge\n"
        "        help: \"\"\n"
        "        value: n\n"
        "        labels: [job]\n";
    CHECK(Lines(RuleFileProblems(yaml)) ==
          Lines({
              "hosts.yaml:3:15: rule \"hosts\": invalid interval \"30\": use a Prometheus "
              "duration such as 30s, 5m or 1h30m",
              "hosts.yaml:6:15: rule \"hosts\": counter \"koji_hosts_enabled\" must end in "
              "\"_total\"",
              "hosts.yaml:10:9: rule \"hosts\": unknown key \"lables\" (allowed: name, type, "
              "help, value, labels, static_labels)",
              "hosts.yaml:11:5: missing required key \"sql\"",
              "hosts.yaml:11:11: invalid rule name \"Tasks\": use snake_case matching "
              "[a-z_][a-z0-9_]*",
              "hosts.yaml:15:15: \"help\" is empty; say what the metric measures",
              "hosts.yaml:17:18: label name \"job\" in \"labels\" is reserved: Prometheus "
              "attaches it to every scraped series and renames an exported one to "
              "\"exported_job\"",
          }));
  }

  TEST_CASE("the exception text lists the problems one per line") {
    CHECK_THROWS_WITH_AS(
        ParseRuleFile(OneMetric("koji_hosts_enabled", "gague"), "hosts.yaml", RuleDefaults{}),
        "hosts.yaml:6:15: rule \"hosts\": type \"gague\" is not one of: "
        "counter, gauge",
        ConfigError);
    CHECK_THROWS_WITH_AS(ParseRuleFile("rules:\n  - interval: 30s\n", "a.yaml", RuleDefaults{}),
                         "a.yaml:2:5: missing required key \"name\"\n"
                         "a.yaml:2:5: missing required key \"sql\"\n"
                         "a.yaml:2:5: missing required key \"metrics\"",
                         ConfigError);
  }

  TEST_CASE("incremental settings are read") {
    const std::vector<Rule> rules = ParseRuleFile(R"(rules:
  - name: jobs
    incremental:
      key: id
      open: open
      reorder_window: 2m
    sql: SELECT id, true AS open, 1 AS jobs
    metrics:
      - {name: koji_jobs_total, type: counter, help: Jobs., value: jobs}
)",
                                                  "jobs.yaml", RuleDefaults{});
    REQUIRE(rules.size() == 1);
    REQUIRE(rules[0].incremental);
    CHECK(rules[0].incremental->key_column == "id");
    CHECK(rules[0].incremental->open_column == "open");
    CHECK(rules[0].incremental->reorder_window == std::chrono::minutes(2));
    CHECK(rules[0].incremental->seed_timeout == std::chrono::minutes(10));
    // The settings are part of the fingerprint, so changing them restarts the sums.
    Rule changed = rules[0];
    changed.incremental->open_column = "running";
    CHECK(RuleFingerprint(changed) != RuleFingerprint(rules[0]));
  }

  TEST_CASE("incremental problems are reported") {
    CheckProblemCases({
        {"missing key, bad column and unknown key",
         "rules:\n"
         "  - name: jobs\n"
         "    incremental: {open: 1open, seed_timeout: soon, bogus: 1}\n"
         "    sql: SELECT 1 AS v\n"
         "    metrics:\n"
         "      - {name: koji_a, type: gauge, help: a, value: v, labels: [kind]}\n"
         "      - {name: koji_b, type: gauge, help: b, value: v}\n",
         {"hosts.yaml:3:18: rule \"jobs\": missing required key \"key\"",
          "hosts.yaml:3:25: rule \"jobs\": invalid column name \"1open\" in "
          "\"incremental.open\": name a result column of letters, digits and underscores",
          "hosts.yaml:3:46: rule \"jobs\": invalid seed_timeout \"soon\": use a Prometheus "
          "duration such as 30s, 5m or 1h30m",
          "hosts.yaml:3:52: rule \"jobs\": unknown key \"bogus\" (allowed: key, open, "
          "reorder_window, seed_timeout)",
          "hosts.yaml:7:9: rule \"jobs\": metric \"koji_b\" has the labels [] but \"koji_a\" "
          "has [kind]: every metric of an incremental rule must use the same label columns"}},
        {"not a map", "rules:\n  - name: jobs\n    incremental: yes\n    sql: SELECT 1 AS v\n"
                      "    metrics:\n      - {name: koji_a, type: gauge, help: a, value: v}\n",
         {"hosts.yaml:3:18: rule \"jobs\": \"incremental\" must be a map with the keys \"key\" "
          "and \"open\", but it is the string \"yes\""}},
    });
  }

  TEST_CASE("incremental SQL must not group or limit") {
    const auto rule_with = [](const std::string& sql) {
      return "rules:\n"
             "  - name: jobs\n"
             "    incremental: {key: id, open: open}\n"
             "    sql: |\n" +
             sql +
             "    metrics:\n"
             "      - {name: koji_jobs_total, type: counter, help: Jobs., value: jobs}\n";
    };
    CheckProblemCases({
        {"grouped", rule_with("      SELECT min(id) AS id, false AS open, count(*) AS jobs\n"
                              "      FROM task Group\n      By method\n"),
         {"hosts.yaml:4:10: rule \"jobs\": the \"sql\" of an incremental rule must return one "
          "row per key, but its outermost query has GROUP BY: remove it, because the exporter "
          "sums the rows itself"}},
        {"ordered and limited",
         rule_with("      WITH recent AS (SELECT id FROM task GROUP BY id)\n"
                   "      SELECT id, false AS open, 1 AS jobs FROM recent\n"
                   "      ORDER BY id DESC LIMIT 100 OFFSET 5\n"),
         {"hosts.yaml:4:10: rule \"jobs\": the \"sql\" of an incremental rule must return one "
          "row per key, but its outermost query has ORDER BY, LIMIT, OFFSET: remove it, because "
          "the exporter sums the rows itself"}},
    });

    // The same words inside parentheses, literals, quoted names and comments are allowed.
    const std::vector<Rule> rules = ParseRuleFile(
        rule_with("      -- ORDER BY id\n"
                  "      SELECT t.id, false AS open, 1 AS jobs, 'group by' AS \"limit\",\n"
                  "             E'it\\'s order by' AS note, $q$ LIMIT 1 $q$ AS other,\n"
                  "             count(*) OVER (ORDER BY t.id) AS seen /* GROUP BY */\n"
                  "      FROM task t WHERE t.id IN (SELECT id FROM task GROUP BY id LIMIT 5)\n"),
        "jobs.yaml", RuleDefaults{});
    CHECK(rules.size() == 1);
  }

  TEST_CASE("stale_after and max_series are checked") {
    const auto rule_with = [](const std::string& lines) {
      return "rules:\n"
             "  - name: hosts\n"
             "    interval: 30s\n" +
             lines +
             "    sql: SELECT 1 AS v\n"
             "    metrics:\n"
             "      - name: koji_hosts_enabled\n"
             "        type: gauge\n"
             "        help: Enabled.\n"
             "        value: v\n";
    };
    CheckProblemCases({
        {"stale_after shorter than the interval", rule_with("    stale_after: 10s\n"),
         {"hosts.yaml:4:18: rule \"hosts\": stale_after \"10s\" must not be shorter than "
          "interval \"30s\""}},
        {"stale_after beside an invalid interval",
         "rules:\n"
         "  - name: hosts\n"
         "    interval: -5s\n"
         "    stale_after: 10s\n"
         "    sql: SELECT 1 AS v\n"
         "    metrics:\n"
         "      - name: koji_hosts_enabled\n"
         "        type: gauge\n"
         "        help: Enabled.\n"
         "        value: v\n",
         {"hosts.yaml:3:15: rule \"hosts\": interval \"-5s\" must be greater than zero"}},
        {"stale_after not a duration", rule_with("    stale_after: soon\n"),
         {"hosts.yaml:4:18: rule \"hosts\": invalid stale_after \"soon\": use a Prometheus "
          "duration such as 30s, 5m or 1h30m"}},
        {"max_series zero", rule_with("    max_series: 0\n"),
         {"hosts.yaml:4:17: rule \"hosts\": \"max_series\" must be an integer from 1 to "
          "10000000, not \"0\""}},
        {"max_series negative", rule_with("    max_series: -5\n"),
         {"hosts.yaml:4:17: rule \"hosts\": \"max_series\" must be an integer from 1 to "
          "10000000, not \"-5\""}},
        {"max_series too large", rule_with("    max_series: 20000000\n"),
         {"hosts.yaml:4:17: rule \"hosts\": \"max_series\" must be an integer from 1 to "
          "10000000, not \"20000000\""}},
    });

    const auto rules =
        ParseRuleFile(rule_with("    stale_after: 2m\n    max_series: 12\n"), "hosts.yaml",
                      RuleDefaults{});
    REQUIRE(rules.size() == 1);
    CHECK(rules[0].stale_after == std::chrono::minutes(2));
    CHECK(rules[0].max_series == 12);
  }

  TEST_CASE("a valid rule file yields every field") {
    const std::string yaml =
        "rules:\n"
        "  - name: hosts\n"
        "    interval: 1h30m\n"
        "    timeout: 5s\n"
        "    sql: |\n"
        "      SELECT name AS host, enabled, ready FROM host\n"
        "    metrics:\n"
        "      - name: koji_hosts_enabled\n"
        "        type: gauge\n"
        "        help: >\n"
        "          Whether the host is enabled (1) or disabled (0).\n"
        "        value: enabled\n"
        "        labels: [host]\n"
        "        static_labels: {site: main, cluster_role: builder}\n"
        "  - name: tasks_finished\n"
        "    sql: SELECT count(*) AS n FROM task\n"
        "    metrics:\n"
        "      - name: koji_tasks_finished_total\n"
        "        type: counter\n"
        "        help: Tasks finished.\n"
        "        value: n\n";
    const auto rules = ParseRuleFile(yaml, "queries/hosts.yaml", RuleDefaults{});
    REQUIRE(rules.size() == 2);

    const Rule& hosts = rules[0];
    CHECK(hosts.name == "hosts");
    CHECK(hosts.sql == "SELECT name AS host, enabled, ready FROM host\n");
    CHECK(hosts.interval == minutes(90));
    CHECK(hosts.timeout == seconds(5));
    CHECK(hosts.stale_after == minutes(270));
    CHECK(hosts.max_series == kDefaultMaxSeries);
    CHECK(hosts.mark.file == "queries/hosts.yaml");
    CHECK(hosts.mark.line == 2);
    CHECK(hosts.mark.column == 5);
    REQUIRE(hosts.metrics.size() == 1);

    const MetricSpec& enabled = hosts.metrics[0];
    CHECK(enabled.name == "koji_hosts_enabled");
    CHECK(enabled.type == MetricType::kGauge);
    CHECK(enabled.help == "Whether the host is enabled (1) or disabled (0).");
    CHECK(enabled.exported_help ==
          "Whether the host is enabled (1) or disabled (0). (rule hosts in queries/hosts.yaml, "
          "refreshed every 1h30m)");
    CHECK(enabled.value_column == "enabled");
    CHECK(enabled.label_columns == std::vector<std::string>{"host"});
    CHECK(enabled.static_labels ==
          std::map<std::string, std::string>{{"cluster_role", "builder"}, {"site", "main"}});
    CHECK(enabled.mark.file == "queries/hosts.yaml");
    CHECK(enabled.mark.line == 8);
    CHECK(enabled.mark.column == 9);

    const Rule& tasks = rules[1];
    CHECK(tasks.interval == seconds(60));
    CHECK(tasks.timeout == seconds(10));
    REQUIRE(tasks.metrics.size() == 1);
    CHECK(tasks.metrics[0].type == MetricType::kCounter);
    CHECK(tasks.metrics[0].label_columns.empty());
    CHECK(tasks.metrics[0].static_labels.empty());
    CHECK(tasks.metrics[0].exported_help ==
          "Tasks finished. (rule tasks_finished in queries/hosts.yaml, refreshed every 1m)");
  }

  TEST_CASE("rule defaults come from the caller") {
    const auto rules = ParseRuleFile(ValidRuleFile("hosts", "koji_hosts_enabled"), "hosts.yaml",
                                     RuleDefaults{seconds(45), seconds(15)});
    REQUIRE(rules.size() == 1);
    CHECK(rules[0].interval == seconds(45));
    CHECK(rules[0].timeout == seconds(15));
    CHECK(rules[0].metrics[0].exported_help ==
          "Enabled. (rule hosts in hosts.yaml, refreshed every 45s)");
  }

  TEST_CASE("an empty rule list is accepted") {
    CHECK(ParseRuleFile("rules: []\n", "empty.yaml", RuleDefaults{}).empty());
  }

  TEST_CASE("durations parse in Prometheus form") {
    struct DurationCase {
      std::string text;
      long long milliseconds;
    };
    const std::vector<DurationCase> valid = {
        {"0", 0},
        {"0s", 0},
        {"500ms", 500},
        {"30s", 30000},
        {"5m", 300000},
        {"1h30m", 5400000},
        {"1d", 86400000},
        {"1w", 604800000},
        {"1y", 31536000000},
        {"1m30s500ms", 90500},
        {"90s", 90000},
    };
    for (const auto& row : valid) {
      CAPTURE(row.text);
      milliseconds duration{-1};
      CHECK(ParseDuration(row.text, &duration));
      CHECK(duration.count() == row.milliseconds);
    }

    for (const std::string text :
         {"", "30", "s", "1.5s", "30S", "1m1h", "1s1s", "-5s", "+5s", " 30s", "30s ", "1msx",
          "1h 30m", "99999999999999999999s", "9223372036854775807y"}) {
      CAPTURE(text);
      milliseconds duration{-1};
      CHECK_FALSE(ParseDuration(text, &duration));
    }
  }

  TEST_CASE("durations format in Prometheus form") {
    CHECK(FormatDuration(milliseconds(0)) == "0s");
    CHECK(FormatDuration(milliseconds(500)) == "500ms");
    CHECK(FormatDuration(milliseconds(1500)) == "1s500ms");
    CHECK(FormatDuration(seconds(30)) == "30s");
    CHECK(FormatDuration(seconds(90)) == "1m30s");
    CHECK(FormatDuration(minutes(60)) == "1h");
    CHECK(FormatDuration(minutes(90)) == "1h30m");
    CHECK(FormatDuration(std::chrono::hours(24)) == "1d");
    CHECK(FormatDuration(std::chrono::hours(24 * 8)) == "1w1d");
    CHECK(FormatDuration(std::chrono::hours(24 * 365)) == "1y");
  }

  TEST_CASE("config fixture loads with relative rule files") {
    const std::string main_path =
        std::string(KOJI_EXPORTER_SOURCE_DIR) + "/tests/fixtures/config/koji_exporter.yaml";
    const Config config = LoadConfig(main_path);

    CHECK(config.path == main_path);
    CHECK(config.database.dsn == "host=replica.example.org dbname=koji user=koji_exporter");
    CHECK(config.database.password_file == "/run/secrets/koji_db_password");
    CHECK(config.database.max_connections == 4);
    CHECK(config.listen_address == "127.0.0.1:19716");
    CHECK(config.rule_file_patterns == std::vector<std::string>{"queries/*.yaml"});
    CHECK(config.default_interval == minutes(2));
    CHECK(config.default_timeout == seconds(20));
    CHECK(config.rule_files ==
          std::vector<std::string>{"queries/hosts.yaml", "queries/tasks.yaml"});

    REQUIRE(config.rules.size() == 2);
    CHECK(config.rules[0].name == "hosts");
    CHECK(config.rules[0].interval == seconds(30));
    CHECK(config.rules[0].mark.file == "queries/hosts.yaml");
    REQUIRE(config.rules[0].metrics.size() == 2);
    CHECK(config.rules[0].metrics[0].static_labels ==
          std::map<std::string, std::string>{{"site", "main"}});
    CHECK(config.rules[1].name == "tasks_waiting");
    CHECK(config.rules[1].interval == minutes(2));
    CHECK(config.rules[1].timeout == seconds(20));
    CHECK(config.rules[1].metrics[0].exported_help ==
          "Tasks in state FREE, waiting for a host. (rule tasks_waiting in queries/tasks.yaml, "
          "refreshed every 2m)");
  }

  TEST_CASE("an empty main file gives the defaults") {
    TempDir dir;
    const std::string main_path = dir.Write("koji_exporter.yaml", "# defaults only\n");
    dir.Write("queries/hosts.yaml", ValidRuleFile("hosts", "koji_hosts_enabled"));
    const Config config = LoadConfig(main_path);

    CHECK(config.database.dsn.empty());
    CHECK(config.database.password_file.empty());
    CHECK(config.database.max_connections == 2);
    CHECK(config.listen_address == ":19716");
    CHECK(config.rule_file_patterns == std::vector<std::string>{"queries/*.yaml"});
    CHECK(config.default_interval == seconds(60));
    CHECK(config.default_timeout == seconds(10));
    CHECK(config.rule_files == std::vector<std::string>{"queries/hosts.yaml"});
    REQUIRE(config.rules.size() == 1);
  }

  TEST_CASE("rule files are sorted, loaded once and named as matched") {
    TempDir dir;
    dir.Write("queries/b.yaml", ValidRuleFile("b", "koji_b"));
    dir.Write("queries/a.yaml", ValidRuleFile("a", "koji_a"));
    dir.Write("extra/c.yaml", ValidRuleFile("c", "koji_c"));
    dir.Write("queries/notes.txt", "not a rule file\n");
    const std::string main_path = dir.Write("koji_exporter.yaml",
                                            "rule_files:\n"
                                            "  - queries/*.yaml\n"
                                            "  - queries/a.yaml\n"
                                            "  - ./queries/b.yaml\n"
                                            "  - " +
                                                dir.Path("queries/a.yaml") +
                                                "\n"
                                                "  - " +
                                                dir.Path("extra/*.yaml") + "\n");
    const Config config = LoadConfig(main_path);

    CHECK(config.rule_files ==
          std::vector<std::string>{"queries/a.yaml", "queries/b.yaml", dir.Path("extra/c.yaml")});
    REQUIRE(config.rules.size() == 3);
    CHECK(config.rules[0].name == "a");
    CHECK(config.rules[1].name == "b");
    CHECK(config.rules[2].name == "c");
    CHECK(config.rules[2].mark.file == dir.Path("extra/c.yaml"));
  }

  TEST_CASE("names are unique across rule files") {
    TempDir dir;
    dir.Write("queries/a.yaml", ValidRuleFile("hosts", "koji_hosts_enabled"));
    dir.Write("queries/b.yaml", ValidRuleFile("hosts", "koji_hosts_enabled") +
                                    ValidRuleFile("hosts_b", "koji_hosts_ready").substr(7));
    dir.Write("queries/c.yaml", ValidRuleFile("hosts_c", "koji_hosts_ready"));
    const std::string main_path = dir.Write("koji_exporter.yaml", "");

    CHECK(Lines(ConfigProblems(main_path)) ==
          Lines({
              "queries/b.yaml:2:5: rule \"hosts\": duplicate rule name (first defined at "
              "queries/a.yaml:2:5)",
              "queries/b.yaml:5:9: rule \"hosts\": duplicate metric \"koji_hosts_enabled\" "
              "(first defined at queries/a.yaml:5:9)",
              "queries/c.yaml:5:9: rule \"hosts_c\": duplicate metric \"koji_hosts_ready\" "
              "(first defined at queries/b.yaml:12:9)",
          }));
  }

  TEST_CASE("patterns that match nothing are named") {
    TempDir dir;
    const std::string main_path = dir.Write("koji_exporter.yaml",
                                            "rule_files:\n"
                                            "  - queries/*.yml\n"
                                            "  - " +
                                                dir.Path("none/*.yaml") + "\n");
    CHECK(Lines(ConfigProblems(main_path)) ==
          Lines({
              main_path +
                  ":2:5: rule file pattern \"queries/*.yml\" matches no file (searched as "
                  "\"" +
                  dir.Path("queries/*.yml") + "\")",
              main_path + ":3:5: rule file pattern \"" + dir.Path("none/*.yaml") +
                  "\" matches no file",
          }));

    const std::string default_path = dir.Write("default.yaml", "web: {}\n");
    CHECK(
        Lines(ConfigProblems(default_path)) ==
        Lines({default_path +
               ": default rule file pattern \"queries/*.yaml\" matches no file "
               "(searched as \"" +
               dir.Path("queries/*.yaml") + "\"); set \"rule_files\" to the rule files to load"}));
  }

  TEST_CASE("glob characters in the main file's directory are taken literally") {
    TempDir dir;
    dir.Write("conf[1]/queries/hosts.yaml", ValidRuleFile("hosts", "koji_hosts_enabled"));
    const std::string main_path = dir.Write("conf[1]/koji_exporter.yaml", "");
    const Config config = LoadConfig(main_path);
    CHECK(config.rule_files == std::vector<std::string>{"queries/hosts.yaml"});
  }

  TEST_CASE("unreadable files are reported with the system error") {
    TempDir dir;
    dir.Write("queries/a.yaml", ValidRuleFile("hosts", "koji_hosts_enabled"));
    fs::create_directories(dir.Path("queries/dir.yaml"));
    const std::string main_path = dir.Write("koji_exporter.yaml", "");
    CHECK(Lines(ConfigProblems(main_path)) ==
          Lines({"queries/dir.yaml: could not read rule file: Is a directory"}));

    const std::string missing = dir.Path("missing.yaml");
    CHECK_THROWS_WITH_AS(LoadConfig(missing),
                         (missing + ": could not read configuration file: No such file or "
                                    "directory")
                             .c_str(),
                         ConfigError);

    // Root reads files whatever their mode, so the permission case needs another user.
    if (geteuid() != 0) {
      const std::string locked = dir.Write("queries/locked.yaml", "rules: []\n");
      REQUIRE(chmod(locked.c_str(), 0) == 0);
      CHECK(Lines(ConfigProblems(main_path)) ==
            Lines({"queries/dir.yaml: could not read rule file: Is a directory",
                   "queries/locked.yaml: could not read rule file: Permission denied"}));
    }
  }

  TEST_CASE("unreadable rule directories are reported with the pattern") {
    // Root lists directories whatever their mode, so this needs another user.
    if (geteuid() == 0) return;
    TempDir dir;
    dir.Write("queries/a.yaml", ValidRuleFile("hosts", "koji_hosts_enabled"));
    const std::string main_path = dir.Write("koji_exporter.yaml", "");
    REQUIRE(chmod(dir.Path("queries").c_str(), 0) == 0);
    const auto problems = ConfigProblems(main_path);
    REQUIRE(chmod(dir.Path("queries").c_str(), 0700) == 0);

    CHECK(Lines(problems) ==
          Lines({main_path + ": rule file pattern \"queries/*.yaml\": could not read directory \"" +
                 dir.Path("queries") + "\": Permission denied"}));
  }

  TEST_CASE("main file problems are all reported") {
    TempDir dir;
    dir.Write("queries/a.yaml", ValidRuleFile("hosts", "koji_hosts_enabled"));
    const std::string main_path = dir.Write("koji_exporter.yaml",
                                            "database:\n"
                                            "  dsn: \"\"\n"
                                            "  password_file: \"\"\n"
                                            "  max_connections: 65\n"
                                            "  user: koji\n"
                                            "web:\n"
                                            "  listen_address: \"19716\"\n"
                                            "defaults:\n"
                                            "  interval: 30s\n"
                                            "  timeout: 30s\n"
                                            "listen: 80\n"
                                            "web: {}\n");
    const std::string file = main_path + ":";
    CHECK(Lines(ConfigProblems(main_path)) ==
          Lines({
              file + "2:8: \"dsn\" is empty; remove the key to use the PG* environment variables",
              file + "3:18: \"password_file\" is empty; remove the key to use PGPASSWORD or "
                     "PGPASSFILE",
              file + "4:20: \"max_connections\" must be an integer from 1 to 64, not \"65\"",
              file + "5:3: unknown key \"user\" (allowed: dsn, password_file, max_connections)",
              file + "7:19: invalid listen address \"19716\": use host:port, :port or [v6]:port "
                     "with a port from 1 to 65535",
              file + "10:12: timeout \"30s\" must be shorter than interval \"30s\"",
              file + "11:1: unknown key \"listen\" (allowed: database, web, rule_files, defaults)",
              file + "12:1: duplicate key \"web\" (first at " + main_path + ":6:1)",
          }));
  }

  TEST_CASE("main file values are range-checked") {
    TempDir dir;
    dir.Write("queries/a.yaml", ValidRuleFile("hosts", "koji_hosts_enabled"));
    struct MainCase {
      std::string yaml;
      std::string expected;  // Empty when the file is valid.
    };
    const std::vector<MainCase> cases = {
        {"database: {max_connections: 0}",
         "1:29: \"max_connections\" must be an integer from 1 to 64, not \"0\""},
        {"database: {max_connections: -1}",
         "1:29: \"max_connections\" must be an integer from 1 to 64, not \"-1\""},
        {"database: {max_connections: two}",
         "1:29: \"max_connections\" must be an integer from 1 to 64, not \"two\""},
        {"database: {max_connections: 2.5}",
         "1:29: \"max_connections\" must be an integer from 1 to 64, not \"2.5\""},
        {"database: {max_connections: 1}", ""},
        {"database: {max_connections: 64}", ""},
        {"web: {listen_address: \":0\"}",
         "1:23: invalid listen address \":0\": use host:port, :port or [v6]:port with a port from "
         "1 to 65535"},
        {"web: {listen_address: \":65536\"}",
         "1:23: invalid listen address \":65536\": use host:port, :port or [v6]:port with a port "
         "from 1 to 65535"},
        {"web: {listen_address: \"localhost:\"}",
         "1:23: invalid listen address \"localhost:\": use host:port, :port or [v6]:port with a "
         "port from 1 to 65535"},
        {"web: {listen_address: \"::1:9100\"}",
         "1:23: invalid listen address \"::1:9100\": use host:port, :port or [v6]:port with a "
         "port from 1 to 65535"},
        {"web: {listen_address: \"[::1]9100\"}",
         "1:23: invalid listen address \"[::1]9100\": use host:port, :port or [v6]:port with a "
         "port from 1 to 65535"},
        {"web: {listen_address: \"[koji]:9100\"}",
         "1:23: invalid listen address \"[koji]:9100\": use host:port, :port or [v6]:port with a "
         "port from 1 to 65535"},
        {"web: {listen_address: \"host name:9100\"}",
         "1:23: invalid listen address \"host name:9100\": use host:port, :port or [v6]:port "
         "with a port from 1 to 65535"},
        {"web: {listen_address: \":19716\"}", ""},
        {"web: {listen_address: \"localhost:9100\"}", ""},
        {"web: {listen_address: \"0.0.0.0:65535\"}", ""},
        {"web: {listen_address: \"[::1]:9100\"}", ""},
        {"database: {dsn: \"postgresql://koji@replica/koji\"}", ""},
        {"defaults: {interval: 5s}",
         "1:22: default timeout \"10s\" must be shorter than interval \"5s\"; set a shorter "
         "\"timeout\""},
        {"defaults: {timeout: 0s}", "1:21: timeout \"0s\" must be greater than zero"},
        {"defaults: {interval: 5s, timeout: 1s}", ""},
        {"rule_files: queries/*.yaml",
         "1:13: \"rule_files\" must be a list of glob patterns, but it is the string "
         "\"queries/*.yaml\""},
        {"rule_files: [[queries]]",
         "1:14: item 1 of \"rule_files\" must be a glob pattern, but it is a list"},
        {"database: koji", "1:11: \"database\" must be a map, but it is the string \"koji\""},
        {"[database]", "1:1: the configuration file must be a map, but it is a list"},
        {"database: {dsn: [a]", "2:1: invalid YAML: end of map flow not found"},
    };
    for (const auto& row : cases) {
      CAPTURE(row.yaml);
      const std::string main_path = dir.Write("koji_exporter.yaml", row.yaml + "\n");
      const std::vector<std::string> expected =
          row.expected.empty() ? std::vector<std::string>{}
                               : std::vector<std::string>{main_path + ":" + row.expected};
      CHECK(Lines(ConfigProblems(main_path)) == Lines(expected));
    }
  }

  TEST_CASE("problems in the main file and rule files are reported together") {
    TempDir dir;
    dir.Write("queries/a.yaml", OneMetric("koji_hosts_enabled", "counter"));
    const std::string main_path = dir.Write("koji_exporter.yaml", "web: {listen_address: x}\n");
    CHECK(Lines(ConfigProblems(main_path)) ==
          Lines({
              main_path + ":1:23: invalid listen address \"x\": use host:port, :port or "
                          "[v6]:port with a port from 1 to 65535",
              "queries/a.yaml:5:15: rule \"hosts\": counter \"koji_hosts_enabled\" must end in "
              "\"_total\"",
          }));
  }

  TEST_CASE("main file defaults reach the rules") {
    TempDir dir;
    dir.Write("queries/a.yaml", WithTiming("    timeout: 45s"));
    const std::string main_path =
        dir.Write("koji_exporter.yaml", "defaults: {interval: 30s, timeout: 5s}\n");
    CHECK(Lines(ConfigProblems(main_path)) ==
          Lines({"queries/a.yaml:3:14: rule \"hosts\": timeout \"45s\" must be shorter than the "
                 "default interval \"30s\""}));
  }
}

}  // namespace
}  // namespace koji_exporter
