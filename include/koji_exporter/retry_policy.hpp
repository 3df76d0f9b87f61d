// When a rule runs next after a failure: soon for faults that pass by themselves, later and
// later for faults that need a person. Pure functions, no clock or database.
#pragma once

#include <chrono>
#include <string>

namespace koji_exporter {

/// Retry strategy for a failed run.
enum class RetryClass {
  /// A fault that usually passes within seconds: the session was cut, a hot standby
  /// cancelled the query for a recovery conflict, or the server is starting or full. The
  /// retry comes after a short delay that doubles with each failure, up to the interval.
  kSoon,
  /// The fault needs a change somewhere (syntax error, missing table, statement or lock
  /// timeout, unusable result): retry at the interval, doubling with each failure up to 8 intervals, so a
  /// broken rule costs the replica little but is never disabled.
  kBackOff,
};

/// Classifies a failure by its reason ("connection", "timeout", "sql", "mapping") and
/// SQLSTATE (may be empty).
RetryClass ClassifyFailure(const std::string& reason, const std::string& sqlstate);

/// Returns the delay before the next run after `consecutive_failures` (1 for the first)
/// failures of class `retry_class`, for a rule run every `interval`. `jitter` in [-1, 1]
/// spreads the delay by up to 10% either way, so rules that failed together do not retry
/// together.
std::chrono::milliseconds RetryDelay(RetryClass retry_class, int consecutive_failures,
                                     std::chrono::milliseconds interval, double jitter);

}  // namespace koji_exporter
