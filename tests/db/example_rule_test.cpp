// The worked example of the README: the rule file in docs/examples/ runs against the
// sample Koji data, and the README shows exactly that file.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "db/test_database.hpp"

namespace koji_exporter {
namespace {

std::string ReadSource(const std::string& relative) {
  std::ifstream file(testing::SourcePath(relative));
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

TEST_SUITE("example rule") {
  TEST_CASE("example rule counts open tasks per builder") {
    testing::TestDatabase database(
        {"tests/fixtures/koji_schema.sql", "tests/fixtures/koji_sample_data.sql"});
    const auto samples = testing::CollectSamples(database.Conninfo(),
                                                 {"docs/examples/host_open_tasks.yaml"});

    // OPEN (state 1) tasks in the sample data, by host: bigmem-01 runs tasks 38 and 39;
    // builder-01 runs 10, 12, 32 and 33; builder-02 runs 21, 23 and 24. builder-03
    // (disabled) and builder-04 run none but are listed; builder-05 has no active
    // host_config row, so Koji does not list it and neither does the rule.
    const std::map<std::string, double> expected = {
        {"koji_host_open_tasks{host=\"bigmem-01.example.org\"}", 2},
        {"koji_host_open_tasks{host=\"builder-01.example.org\"}", 4},
        {"koji_host_open_tasks{host=\"builder-02.example.org\"}", 3},
        {"koji_host_open_tasks{host=\"builder-03.example.org\"}", 0},
        {"koji_host_open_tasks{host=\"builder-04.example.org\"}", 0},
    };
    CHECK(samples == expected);
  }

  TEST_CASE("incremental example counts tasks per user") {
    testing::TestDatabase database(
        {"tests/fixtures/koji_schema.sql", "tests/fixtures/koji_sample_data.sql"});
    const auto samples = testing::CollectSamples(database.Conninfo(),
                                                 {"docs/examples/user_task_counts.yaml"});

    // The same numbers, counted over the whole task table.
    std::map<std::string, double> expected;
    for (const std::string user : {"admin", "kojira", "alice"}) {
      const std::string tasks = database.QueryValue(
          "SELECT count(*) FROM task t JOIN users u ON u.id = t.owner WHERE u.name = '" + user +
          "'");
      if (tasks == "0") continue;
      const std::string failed = database.QueryValue(
          "SELECT count(*) FROM task t JOIN users u ON u.id = t.owner WHERE u.name = '" + user +
          "' AND t.state = 5");
      expected["koji_user_tasks_total{owner=\"" + user + "\"}"] = std::stod(tasks);
      expected["koji_user_task_failures_total{owner=\"" + user + "\"}"] = std::stod(failed);
    }
    REQUIRE(expected.size() >= 4);
    for (const auto& [series, value] : expected) {
      CAPTURE(series);
      REQUIRE(samples.count(series) == 1);
      CHECK(samples.at(series) == value);
    }
  }

  TEST_CASE("readme shows the example rule files verbatim") {
    for (const char* path :
         {"docs/examples/host_open_tasks.yaml", "docs/examples/user_task_counts.yaml"}) {
      CAPTURE(path);
      std::string rule_file = ReadSource(path);
      // The file's first line is a comment that the README does not repeat.
      rule_file = rule_file.substr(rule_file.find('\n') + 1);
      const std::string readme = ReadSource("README.md");
      CHECK_MESSAGE(readme.find("```yaml\n" + rule_file + "```") != std::string::npos,
                    "README.md's rule example differs from " << path);
    }
  }
}

}  // namespace koji_exporter
