// Turns the main configuration file and queries/*.yaml into a validated Config. It deals with
// YAML and Prometheus naming, not PostgreSQL or HTTP.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "koji_exporter/rule.hpp"

namespace koji_exporter {

/// Raised when a configuration cannot be used. Carries every problem found, each of the
/// form `file:line:col: rule "name": problem` (the rule part only where one applies).
/// A problem with a whole file, such as one that cannot be read, reads `file: problem`.
/// what() lists the problems one per line, in file order.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

/// Interval and timeout that rules without their own get.
struct RuleDefaults {
  std::chrono::milliseconds interval{std::chrono::seconds(60)};
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
};

/// Parses one rule file's text. `file_name` is used only in messages and marks.
/// Throws ConfigError listing every problem in the file.
std::vector<Rule> ParseRuleFile(const std::string& text, const std::string& file_name,
                                const RuleDefaults& defaults);

/// Loads the main file at `path` and every rule file its `rule_files` globs match
/// (relative globs are taken from the main file's directory), then checks names across
/// files. Throws ConfigError listing every problem in every file.
Config LoadConfig(const std::string& path);

/// Parses a Prometheus-style duration ("90s", "5m", "1h30m", "500ms") into
/// milliseconds; returns false if the text is not one.
bool ParseDuration(const std::string& text, std::chrono::milliseconds* duration);

/// Formats a duration the way Prometheus does, largest unit first: 30s, 1m30s, 1h30m,
/// 1d, 1w, 500ms; zero is "0s". Units are y (365d), w, d, h, m, s and ms.
std::string FormatDuration(std::chrono::milliseconds duration);

}  // namespace koji_exporter
