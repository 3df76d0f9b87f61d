// Names of the rule model's enumerations; the model itself is plain data in rule.hpp.
#include "koji_exporter/rule.hpp"

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

}  // namespace koji_exporter
