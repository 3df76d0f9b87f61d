// Log lines: logfmt quoting, JSON, levels and context fields.
#include <doctest/doctest.h>

#include <vector>

#include "koji_exporter/log.hpp"

namespace koji_exporter {
namespace {

// Drops the leading "ts=..." field, whose value changes every run.
std::string WithoutTimestamp(const std::string& line) {
  if (line.rfind("ts=", 0) == 0) return line.substr(line.find(' ') + 1);
  if (line.rfind("{\"ts\":", 0) == 0) return "{" + line.substr(line.find(',') + 1);
  return line;
}

}  // namespace

TEST_SUITE("log") {
  TEST_CASE("logfmt quotes values that need it") {
    std::vector<std::string> lines;
    Logger logger(LogLevel::kInfo, LogFormat::kLogfmt,
                  [&lines](const std::string& line) { lines.push_back(line); });
    logger.With({{"rule", "hosts"}, {"file", "queries/hosts.yaml"}})
        .Warn("rule failed", {{"sqlstate", "42P01"}, {"err", "relation \"x\" does not exist"},
                              {"empty", ""}});
    REQUIRE(lines.size() == 1);
    CHECK(WithoutTimestamp(lines[0]) ==
          "level=warn msg=\"rule failed\" rule=hosts file=queries/hosts.yaml sqlstate=42P01 "
          "err=\"relation \\\"x\\\" does not exist\" empty=\"\"");
  }

  TEST_CASE("json lines escape control characters") {
    std::vector<std::string> lines;
    Logger logger(LogLevel::kDebug, LogFormat::kJson,
                  [&lines](const std::string& line) { lines.push_back(line); });
    logger.Info("started", {{"note", "a\nb\x01"}});
    REQUIRE(lines.size() == 1);
    CHECK(WithoutTimestamp(lines[0]) ==
          "{\"level\":\"info\",\"msg\":\"started\",\"note\":\"a\\nb\\u0001\"}");
  }

  TEST_CASE("events below the level are dropped") {
    std::vector<std::string> lines;
    Logger logger(LogLevel::kWarn, LogFormat::kLogfmt,
                  [&lines](const std::string& line) { lines.push_back(line); });
    logger.Debug("x");
    logger.Info("x");
    logger.Warn("x");
    logger.Error("x");
    CHECK(lines.size() == 2);
  }

  TEST_CASE("levels and formats parse from flag values") {
    LogLevel level = LogLevel::kInfo;
    CHECK(ParseLogLevel("debug", &level));
    CHECK(level == LogLevel::kDebug);
    CHECK_FALSE(ParseLogLevel("verbose", &level));
    LogFormat format = LogFormat::kLogfmt;
    CHECK(ParseLogFormat("json", &format));
    CHECK(format == LogFormat::kJson);
    CHECK_FALSE(ParseLogFormat("text", &format));
  }
}

}  // namespace koji_exporter
