// Keeps the latest samples of every rule, rendered in the text format, and the exporter's
// own metrics, and publishes them as one immutable, pre-rendered snapshot. It deals with metrics, not SQL or HTTP.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "koji_exporter/log.hpp"
#include "koji_exporter/row_mapper.hpp"
#include "koji_exporter/rule.hpp"

namespace koji_exporter {

/// One rendered exposition. Immutable once published, so HTTP threads read it without
/// locks while the scheduler builds the next one.
struct Snapshot {
  std::string text;
  std::string gzip;
  std::chrono::system_clock::time_point created;
};

/// Outcome of one rule run, as the scheduler measured it.
struct RunReport {
  std::chrono::duration<double> duration{0};
  std::chrono::system_clock::time_point finished;
  bool success = false;
  /// For a failed run: "timeout", "connection", "sql" or "mapping".
  std::string failure_reason;
  /// For a failed run, the SQLSTATE the server sent, if any.
  std::string sqlstate;
  std::uint64_t rows = 0;
  MappingProblems problems;
};

/// Latest state of every rule plus the self-metrics derived from it. Thread-safe.
class Registry {
 public:
  /// `rules` fixes the order of families in the exposition; `version` and `revision` feed
  /// koji_exporter_build_info.
  Registry(const std::vector<Rule>& rules, std::string version, std::string revision,
           Logger logger);

  /// Renders a successful run's families into the rule's text, which replaces its previous
  /// samples, and publishes a new snapshot.
  void RecordSuccess(const Rule& rule, std::vector<prometheus::MetricFamily> families,
                     const RunReport& report);
  /// Records a failed run. The rule's last good families stay published until its
  /// stale_after has passed since its last success; then they are dropped, with one log
  /// line, until a run succeeds again.
  void RecordFailure(const Rule& rule, const RunReport& report);
  /// Sets koji_exporter_database_up and publishes when it changed. Logs each change once
  /// (and the first state), not every failed attempt; `error` is logged when `up` is false.
  void SetDatabaseUp(bool up, const std::string& error = "");

  /// Switches to the rules of a reloaded configuration. Rules whose fingerprint is
  /// unchanged keep their families and statistics; removed or changed rules lose them, so
  /// no series of an old definition stays behind. Results that arrive later for a rule no
  /// longer configured are ignored.
  void Reconfigure(const std::vector<Rule>& rules);
  /// Records the outcome of a configuration reload (or the initial load) for
  /// koji_exporter_config_last_reload_successful and, on success, the time and the
  /// configuration's hash.
  void RecordReload(bool success, double config_hash, std::chrono::system_clock::time_point when);

  /// Returns the latest snapshot; never blocks on a rule run.
  std::shared_ptr<const Snapshot> Current() const;

 private:
  struct RuleState {
    std::string name;
    std::string fingerprint;
    std::chrono::milliseconds stale_after{0};
    // Text format of the rule's samples, with HELP and TYPE lines. Empty before the rule's
    // first success and after its values go stale.
    std::string exposition;
    bool has_run = false;
    bool last_success = false;
    double last_duration_seconds = 0;
    double duration_seconds_total = 0;
    double last_success_timestamp_seconds = 0;
    std::uint64_t runs = 0;
    std::uint64_t errors = 0;
    std::map<std::string, std::uint64_t> failures_by_reason;
    std::uint64_t rows = 0;
    MappingProblems problems_total;
  };

  static RuleState NewState(const Rule& rule);
  // Returns the state of `rule`, or nullptr when it is no longer configured as it was
  // when it ran (a reload removed or changed it meanwhile).
  RuleState* StateOf(const Rule& rule);
  RuleState* StateByName(const std::string& name);
  void Account(RuleState& state, const RunReport& report);
  std::vector<prometheus::MetricFamily> SelfMetrics() const;
  void PublishLocked();

  Logger logger_;
  std::string version_;
  std::string revision_;

  mutable std::mutex mutex_;
  std::vector<RuleState> rules_;
  std::map<std::string, std::size_t> rule_index_;
  // Unset until the first run reports, so that the first state is logged too.
  std::optional<bool> database_up_;
  bool last_reload_successful_ = true;
  double last_reload_timestamp_seconds_ = 0;
  double config_hash_ = 0;
  std::shared_ptr<const Snapshot> current_;
};

}  // namespace koji_exporter
