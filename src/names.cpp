// Prometheus naming rules: one table of reserved label names and the character checks.
#include "koji_exporter/names.hpp"

#include <array>

namespace koji_exporter {
namespace {

struct ReservedLabel {
  const char* name;
  const char* reason;
};

// Keep in step with the list in names.hpp, which explains each entry in more detail.
constexpr std::array<ReservedLabel, 5> kReservedLabels{{
    {"le", "it is the upper bound of a histogram bucket"},
    {"quantile", "it is the quantile of a summary"},
    {"job",
     "Prometheus attaches it to every scraped series and renames an exported one to "
     "\"exported_job\""},
    {"instance",
     "Prometheus attaches it to every scraped series and renames an exported one to "
     "\"exported_instance\""},
    {"type",
     "Koji has many kinds of type (build, archive, buildroot, checksum), so name the label "
     "after the kind"},
}};

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

// Matches [a-zA-Z_][a-zA-Z0-9_]*, the syntax shared by metric and label names.
bool IsIdentifier(const std::string& name) {
  if (name.empty() || IsAsciiDigit(name[0])) return false;
  for (char c : name) {
    if (!IsAsciiLetter(c) && !IsAsciiDigit(c) && c != '_') return false;
  }
  return true;
}

}  // namespace

bool IsValidMetricName(const std::string& name) { return IsIdentifier(name); }

bool IsValidLabelName(const std::string& name) {
  return IsIdentifier(name) && name.compare(0, 2, "__") != 0;
}

bool IsReservedLabelName(const std::string& name) { return !ReservedLabelReason(name).empty(); }

std::string ReservedLabelReason(const std::string& name) {
  for (const auto& reserved : kReservedLabels) {
    if (name == reserved.name) return reserved.reason;
  }
  return "";
}

}  // namespace koji_exporter
