// Renders metric families in the Prometheus text format 0.0.4 and compresses it. It deals with
// the format, not where the families come from.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

namespace koji_exporter {

/// Content-Type of the Prometheus text format served on /metrics.
inline constexpr const char* kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

/// Raised when a family or label name is not valid in the text format. prometheus-cpp
/// writes any name it is given, so names are checked here to name the culprit.
class ExpositionError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Serializes `families` with prometheus-cpp's TextSerializer after checking every
/// family and label name and escaping backslashes and line breaks in HELP texts.
/// Throws ExpositionError naming the first invalid name.
std::string RenderExposition(std::vector<prometheus::MetricFamily> families);

/// Returns `body` compressed in gzip format (RFC 1952).
std::string GzipCompress(const std::string& body);

}  // namespace koji_exporter
