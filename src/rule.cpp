// Names of the rule model's enumerations and fingerprints of rules and configurations;
// the model itself is plain data in rule.hpp.
#include "koji_exporter/rule.hpp"

#include <cstdint>
#include <string>

namespace koji_exporter {

const char* MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kCounter:
      return "counter";
  }
  return "unknown";
}

std::string RuleFingerprint(const Rule& rule) {
  // Length-prefixed fields, so that no two different rules can give the same text.
  std::string text;
  const auto add = [&text](const std::string& field) {
    text += std::to_string(field.size()) + ":" + field + ";";
  };
  add(rule.name);
  add(rule.sql);
  add(std::to_string(rule.interval.count()));
  add(std::to_string(rule.timeout.count()));
  add(std::to_string(rule.stale_after.count()));
  add(std::to_string(rule.max_series));
  if (rule.incremental) {
    add("incremental");
    add(rule.incremental->key_column);
    add(rule.incremental->open_column);
    add(std::to_string(rule.incremental->reorder_window.count()));
    add(std::to_string(rule.incremental->seed_timeout.count()));
  }
  for (const auto& metric : rule.metrics) {
    add(metric.name);
    add(MetricTypeName(metric.type));
    add(metric.exported_help);
    add(metric.value_column);
    for (const auto& label : metric.label_columns) add("label=" + label);
    for (const auto& [name, value] : metric.static_labels) add("static=" + name + "=" + value);
  }
  return text;
}

double ConfigHash(const Config& config, const std::string& conninfo) {
  // FNV-1a over every rule and the connection settings, cut to 48 bits so the value is
  // exact as a Prometheus sample (a double has 53 bits of mantissa).
  std::uint64_t hash = 14695981039346656037ULL;
  const auto mix = [&hash](const std::string& text) {
    for (const unsigned char c : text) {
      hash ^= c;
      hash *= 1099511628211ULL;
    }
  };
  mix(conninfo);
  mix(std::to_string(config.database.max_connections));
  mix(config.listen_address);
  for (const auto& rule : config.rules) mix(RuleFingerprint(rule));
  return static_cast<double>(hash & ((1ULL << 48) - 1));
}

}  // namespace koji_exporter
