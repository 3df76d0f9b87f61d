// Timing, read from the "interval" and "timeout" keys of a mapping. ParseDuration and
// FormatDuration are public and declared in koji_exporter/rule_loader.hpp instead.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "config_yaml.hpp"

namespace koji_exporter::detail {

// The interval and timeout of a rule, or the defaults for rules that set neither.
struct Timing {
  std::chrono::milliseconds interval;
  std::chrono::milliseconds timeout;
};

// Reads a positive duration from `key`. Returns std::nullopt if the key is absent or the
// value was reported as unusable.
std::optional<std::chrono::milliseconds> ReadDuration(const Entries& entries,
                                                      const std::string& key, const Scope& scope);

// Reads "interval" and "timeout", falling back to `defaults` for each one that is absent
// or invalid, and checks that the timeout is shorter than the interval. When neither is
// given, the pair is not checked here, because the defaults were checked where they were set.
Timing ReadTiming(const Entries& entries, const Timing& defaults, const Scope& scope);

}  // namespace koji_exporter::detail
