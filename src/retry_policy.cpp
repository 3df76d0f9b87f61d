// Retry classes by SQLSTATE, and the backoff delays for each class.
#include "koji_exporter/retry_policy.hpp"

#include <algorithm>
#include <cmath>

namespace koji_exporter {
namespace {

// First delay of a kSoon retry; it doubles with each further failure.
constexpr std::chrono::milliseconds kFirstSoonDelay{1000};
// Maximum backoff of a kBackOff retry, in intervals.
constexpr int kMaxBackOffIntervals = 8;

bool StartsWith(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

}  // namespace

RetryClass ClassifyFailure(const std::string& reason, const std::string& sqlstate) {
  if (reason == "connection") return RetryClass::kSoon;
  if (reason != "sql") return RetryClass::kBackOff;
  // Class 08: connection exceptions. 40001: serialization failure, which a hot standby
  // also raises when it cancels a query that conflicts with replay. 40P01: deadlock.
  // 57P01-57P03: administrator or crash shutdown, server starting. 53300: too many
  // connections. A lock timeout (55P03) arrives as reason "timeout", not here.
  if (StartsWith(sqlstate, "08")) return RetryClass::kSoon;
  for (const char* transient : {"40001", "40P01", "57P01", "57P02", "57P03", "53300"}) {
    if (sqlstate == transient) return RetryClass::kSoon;
  }
  return RetryClass::kBackOff;
}

std::chrono::milliseconds RetryDelay(RetryClass retry_class, int consecutive_failures,
                                     std::chrono::milliseconds interval, double jitter) {
  // Doublings beyond 30 would overflow and exceed every cap anyway.
  const int doublings = std::clamp(consecutive_failures - 1, 0, 30);
  const double factor = std::ldexp(1.0, doublings);

  double delay_ms = 0;
  if (retry_class == RetryClass::kSoon) {
    delay_ms = std::min(static_cast<double>(kFirstSoonDelay.count()) * factor,
                        static_cast<double>(interval.count()));
  } else {
    delay_ms = static_cast<double>(interval.count()) *
               std::min(factor, static_cast<double>(kMaxBackOffIntervals));
  }
  delay_ms *= 1.0 + 0.1 * std::clamp(jitter, -1.0, 1.0);
  return std::chrono::milliseconds(static_cast<long long>(delay_ms));
}

}  // namespace koji_exporter
