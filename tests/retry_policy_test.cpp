// Retry classes and delays after failed runs.
#include <doctest/doctest.h>

#include "koji_exporter/retry_policy.hpp"

namespace koji_exporter {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_SUITE("retry_policy") {
  TEST_CASE("failures are classified by reason and sqlstate") {
    CHECK(ClassifyFailure("connection", "") == RetryClass::kSoon);
    for (const char* sqlstate : {"40001", "40P01", "57P01", "57P02", "57P03", "53300", "08006",
                                 "08003"}) {
      CAPTURE(sqlstate);
      CHECK(ClassifyFailure("sql", sqlstate) == RetryClass::kSoon);
    }
    for (const char* sqlstate : {"42P01", "42601", "42703", "25006", "22012", ""}) {
      CAPTURE(sqlstate);
      CHECK(ClassifyFailure("sql", sqlstate) == RetryClass::kBackOff);
    }
    CHECK(ClassifyFailure("timeout", "57014") == RetryClass::kBackOff);
    CHECK(ClassifyFailure("mapping", "") == RetryClass::kBackOff);
  }

  TEST_CASE("soon retries double up to the interval") {
    CHECK(RetryDelay(RetryClass::kSoon, 1, seconds(60), 0) == seconds(1));
    CHECK(RetryDelay(RetryClass::kSoon, 2, seconds(60), 0) == seconds(2));
    CHECK(RetryDelay(RetryClass::kSoon, 6, seconds(60), 0) == seconds(32));
    CHECK(RetryDelay(RetryClass::kSoon, 7, seconds(60), 0) == seconds(60));
    CHECK(RetryDelay(RetryClass::kSoon, 1000, seconds(60), 0) == seconds(60));
    CHECK(RetryDelay(RetryClass::kSoon, 1, milliseconds(500), 0) == milliseconds(500));
  }

  TEST_CASE("backoff retries double up to eight intervals") {
    CHECK(RetryDelay(RetryClass::kBackOff, 1, seconds(30), 0) == seconds(30));
    CHECK(RetryDelay(RetryClass::kBackOff, 2, seconds(30), 0) == seconds(60));
    CHECK(RetryDelay(RetryClass::kBackOff, 4, seconds(30), 0) == seconds(240));
    CHECK(RetryDelay(RetryClass::kBackOff, 5, seconds(30), 0) == seconds(240));
    CHECK(RetryDelay(RetryClass::kBackOff, 100000, seconds(30), 0) == seconds(240));
  }

  TEST_CASE("jitter spreads delays by ten percent") {
    CHECK(RetryDelay(RetryClass::kBackOff, 1, seconds(100), 1) == seconds(110));
    CHECK(RetryDelay(RetryClass::kBackOff, 1, seconds(100), -1) == seconds(90));
    CHECK(RetryDelay(RetryClass::kBackOff, 1, seconds(100), 5) == seconds(110));
  }
}

}  // namespace koji_exporter
