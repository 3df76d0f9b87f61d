// Prometheus durations: parsing and formatting their text, and reading the "interval" and
// "timeout" keys that use them. It has no code for rules, metrics or files.
#include "duration.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "config_yaml.hpp"
#include "koji_exporter/rule_loader.hpp"

namespace koji_exporter {

namespace {

using std::chrono::milliseconds;

struct DurationUnit {
  const char* suffix;
  std::int64_t milliseconds;
};

// Prometheus's duration units, largest first. As in model.ParseDuration of
// github.com/prometheus/common (model/time.go), a duration uses each unit at most once and
// in this order, and a year is 365 days.
constexpr std::array<DurationUnit, 7> kDurationUnits{{
    {"y", 365LL * 24 * 60 * 60 * 1000},
    {"w", 7LL * 24 * 60 * 60 * 1000},
    {"d", 24LL * 60 * 60 * 1000},
    {"h", 60LL * 60 * 1000},
    {"m", 60LL * 1000},
    {"s", 1000},
    {"ms", 1},
}};

}  // namespace

bool ParseDuration(const std::string& text, milliseconds* duration) {
  if (text == "0") {
    *duration = milliseconds(0);
    return true;
  }
  if (text.empty()) return false;

  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  std::int64_t total = 0;
  std::size_t next_unit = 0;  // Units must come in descending order, each at most once.
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::int64_t number = 0;
    const std::size_t digits_start = pos;
    for (; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos) {
      if (number > (kMax - (text[pos] - '0')) / 10) return false;
      number = number * 10 + (text[pos] - '0');
    }
    if (pos == digits_start) return false;

    const std::size_t unit_start = pos;
    while (pos < text.size() && std::isalpha(static_cast<unsigned char>(text[pos])) != 0) ++pos;
    const std::string suffix = text.substr(unit_start, pos - unit_start);
    std::size_t unit = next_unit;
    while (unit < kDurationUnits.size() && suffix != kDurationUnits[unit].suffix) ++unit;
    if (unit == kDurationUnits.size()) return false;

    const std::int64_t factor = kDurationUnits[unit].milliseconds;
    if (number > (kMax - total) / factor) return false;
    total += number * factor;
    next_unit = unit + 1;
  }
  *duration = milliseconds(total);
  return true;
}

std::string FormatDuration(milliseconds duration) {
  if (duration.count() == 0) return "0s";
  if (duration.count() < 0) return "-" + FormatDuration(-duration);

  std::string text;
  std::int64_t rest = duration.count();
  for (const auto& unit : kDurationUnits) {
    if (rest >= unit.milliseconds) {
      text += fmt::format("{}{}", rest / unit.milliseconds, unit.suffix);
      rest %= unit.milliseconds;
    }
  }
  return text;
}

namespace detail {

// Reads a positive duration. Returns std::nullopt if the key is absent or the value was
// reported as unusable.
std::optional<milliseconds> ReadDuration(const Entries& entries, const std::string& key,
                                         const Scope& scope) {
  const Entry* entry = FindEntry(entries, key);
  if (entry == nullptr) return std::nullopt;
  if (!CheckType(*entry, key, YAML::NodeType::Scalar, "a duration such as 30s", scope)) {
    return std::nullopt;
  }

  const std::string& text = entry->value.Scalar();
  milliseconds duration{0};
  // Prometheus durations have no sign. A leading minus still gets the "greater than zero"
  // message, because that states the actual mistake.
  const bool negative = StartsWith(text, "-") && ParseDuration(text.substr(1), &duration);
  if (negative || (ParseDuration(text, &duration) && duration.count() == 0)) {
    scope.Report(entry->Mark(), fmt::format("{} \"{}\" must be greater than zero", key, text));
    return std::nullopt;
  }
  if (!ParseDuration(text, &duration)) {
    scope.Report(entry->Mark(),
                 fmt::format("invalid {} \"{}\": use a Prometheus duration such as 30s, 5m or "
                             "1h30m",
                             key, text));
    return std::nullopt;
  }
  return duration;
}


Timing ReadTiming(const Entries& entries, const Timing& defaults, const Scope& scope) {
  const auto interval = ReadDuration(entries, "interval", scope);
  const auto timeout = ReadDuration(entries, "timeout", scope);
  const Timing timing{interval.value_or(defaults.interval), timeout.value_or(defaults.timeout)};

  const Entry* interval_entry = FindEntry(entries, "interval");
  const Entry* timeout_entry = FindEntry(entries, "timeout");
  const bool interval_unusable = interval_entry != nullptr && !interval;
  const bool timeout_unusable = timeout_entry != nullptr && !timeout;
  if (interval_unusable || timeout_unusable || (!interval && !timeout)) return timing;
  if (timing.timeout < timing.interval) return timing;

  if (interval && timeout) {
    scope.Report(timeout_entry->Mark(),
                 fmt::format("timeout \"{}\" must be shorter than interval \"{}\"",
                             timeout_entry->value.Scalar(), interval_entry->value.Scalar()));
  } else if (interval) {
    scope.Report(interval_entry->Mark(),
                 fmt::format("default timeout \"{}\" must be shorter than interval \"{}\"; set a "
                             "shorter \"timeout\"",
                             FormatDuration(defaults.timeout), interval_entry->value.Scalar()));
  } else {
    scope.Report(timeout_entry->Mark(),
                 fmt::format("timeout \"{}\" must be shorter than the default interval \"{}\"",
                             timeout_entry->value.Scalar(), FormatDuration(defaults.interval)));
  }
  return timing;
}

}  // namespace detail

}  // namespace koji_exporter
