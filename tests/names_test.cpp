// Tests for the Prometheus naming rules in names.hpp and the metric type names.
#include "koji_exporter/names.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "koji_exporter/rule.hpp"

namespace koji_exporter {
namespace {

struct NameCase {
  std::string name;
  bool valid;
};

TEST_SUITE("names") {
  TEST_CASE("metric names follow the Prometheus syntax without colons") {
    const std::vector<NameCase> cases = {
        {"koji_hosts_enabled", true},
        {"_private", true},
        {"Koji_Hosts", true},
        {"a1", true},
        {"", false},
        {"1koji", false},
        {"koji-hosts", false},
        {"koji hosts", false},
        {"koji.hosts", false},
        {"koji:hosts", false},
        {"kojí", false},
    };
    for (const auto& row : cases) {
      CAPTURE(row.name);
      CHECK(IsValidMetricName(row.name) == row.valid);
    }
  }

  TEST_CASE("label names follow the Prometheus syntax without double underscore") {
    const std::vector<NameCase> cases = {
        {"host", true},       {"_host", true},     {"Host", true},    {"channel2", true},
        {"job", true},        {"", false},         {"2host", false},  {"host-name", false},
        {"host:name", false}, {"__name__", false}, {"__host", false},
    };
    for (const auto& row : cases) {
      CAPTURE(row.name);
      CHECK(IsValidLabelName(row.name) == row.valid);
    }
  }

  TEST_CASE("reserved label names each have a reason") {
    for (const std::string name : {"le", "quantile", "job", "instance", "type"}) {
      CAPTURE(name);
      CHECK(IsReservedLabelName(name));
      CHECK_FALSE(ReservedLabelReason(name).empty());
    }
    for (const std::string name : {"host", "Job", "types", "level", "exported_job", ""}) {
      CAPTURE(name);
      CHECK_FALSE(IsReservedLabelName(name));
      CHECK(ReservedLabelReason(name).empty());
    }
  }

  TEST_CASE("reserved label reasons name the conflict") {
    CHECK(ReservedLabelReason("le") == "it is the upper bound of a histogram bucket");
    CHECK(ReservedLabelReason("job") ==
          "Prometheus attaches it to every scraped series and renames an exported one to "
          "\"exported_job\"");
  }

  TEST_CASE("metric type names match the exposition format") {
    CHECK(std::string(MetricTypeName(MetricType::kGauge)) == "gauge");
    CHECK(std::string(MetricTypeName(MetricType::kCounter)) == "counter");
  }
}

}  // namespace
}  // namespace koji_exporter
