// Stores each rule's rendered samples and run statistics, derives the self-metrics from
// them and assembles a new snapshot after every change.
#include "koji_exporter/registry.hpp"

#include <atomic>
#include <chrono>
#include <optional>

#include <fmt/format.h>

#include "koji_exporter/exposition.hpp"

namespace koji_exporter {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using SampleType = prometheus::MetricType;

double UnixSeconds(std::chrono::system_clock::time_point time) {
  return std::chrono::duration<double>(time.time_since_epoch()).count();
}

ClientMetric Sample(SampleType type, double value, std::vector<ClientMetric::Label> labels) {
  ClientMetric sample;
  sample.label = std::move(labels);
  if (type == SampleType::Counter) {
    sample.counter.value = value;
  } else {
    sample.gauge.value = value;
  }
  return sample;
}

MetricFamily Family(const char* name, const char* help, SampleType type) {
  MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  return family;
}

}  // namespace

Registry::Registry(const std::vector<Rule>& rules, std::string version, std::string revision,
                   Logger logger)
    : logger_(std::move(logger)), version_(std::move(version)), revision_(std::move(revision)) {
  for (const auto& rule : rules) {
    rule_index_[rule.name] = rules_.size();
    rules_.push_back(NewState(rule));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  PublishLocked();
}

Registry::RuleState Registry::NewState(const Rule& rule) {
  RuleState state;
  state.name = rule.name;
  state.fingerprint = RuleFingerprint(rule);
  state.stale_after = rule.stale_after;
  return state;
}

Registry::RuleState* Registry::StateByName(const std::string& name) {
  const auto found = rule_index_.find(name);
  return found == rule_index_.end() ? nullptr : &rules_[found->second];
}

Registry::RuleState* Registry::StateOf(const Rule& rule) {
  RuleState* state = StateByName(rule.name);
  if (state == nullptr || state->fingerprint != RuleFingerprint(rule)) return nullptr;
  return state;
}

void Registry::Reconfigure(const std::vector<Rule>& rules) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<RuleState> states;
  std::map<std::string, std::size_t> index;
  for (const auto& rule : rules) {
    RuleState* old = StateOf(rule);
    index[rule.name] = states.size();
    if (old != nullptr) {
      states.push_back(std::move(*old));
    } else {
      states.push_back(NewState(rule));
    }
  }
  rules_ = std::move(states);
  rule_index_ = std::move(index);
  PublishLocked();
}

void Registry::RecordReload(bool success, double config_hash,
                            std::chrono::system_clock::time_point when) {
  std::lock_guard<std::mutex> lock(mutex_);
  last_reload_successful_ = success;
  if (success) {
    last_reload_timestamp_seconds_ = UnixSeconds(when);
    config_hash_ = config_hash;
  }
  PublishLocked();
}

void Registry::Account(RuleState& state, const RunReport& report) {
  state.has_run = true;
  state.last_success = report.success;
  state.last_duration_seconds = report.duration.count();
  state.duration_seconds_total += report.duration.count();
  ++state.runs;
  if (report.success) {
    state.last_success_timestamp_seconds = UnixSeconds(report.finished);
    state.rows = report.rows;
    state.problems_total.Add(report.problems);
  } else {
    ++state.errors;
    ++state.failures_by_reason[report.failure_reason];
  }
}

void Registry::RecordSuccess(const Rule& rule, std::vector<MetricFamily> families,
                             const RunReport& report) {
  // Renders the samples once per run, outside the lock, and frees the families right after.
  // A large rule then keeps the text of each sample instead of a sample object.
  std::optional<std::string> text;
  try {
    text = RenderExposition(std::move(families));
  } catch (const ExpositionError& error) {
    // Names are validated when rules load, so this is a bug. The rule's previous text stays.
    logger_.Error("exposition rendering failed; the rule's previous series stay",
                  {{"rule", rule.name}, {"err", error.what()}});
  }
  std::lock_guard<std::mutex> lock(mutex_);
  RuleState* state = StateOf(rule);
  if (state == nullptr) return;
  if (text) state->exposition = std::move(*text);
  Account(*state, report);
  PublishLocked();
}

void Registry::RecordFailure(const Rule& rule, const RunReport& report) {
  std::lock_guard<std::mutex> lock(mutex_);
  RuleState* found = StateOf(rule);
  if (found == nullptr) return;
  RuleState& state = *found;
  Account(state, report);

  const double stale_after_seconds = std::chrono::duration<double>(state.stale_after).count();
  const bool stale = state.last_success_timestamp_seconds > 0 &&
                     UnixSeconds(report.finished) - state.last_success_timestamp_seconds >=
                         stale_after_seconds;
  if (stale && !state.exposition.empty()) {
    state.exposition.clear();
    state.exposition.shrink_to_fit();
    logger_.Warn("rule values are stale; their series are dropped until the rule succeeds",
                 {{"rule", state.name},
                  {"stale_after_seconds", fmt::format("{:g}", stale_after_seconds)}});
  }
  PublishLocked();
}

void Registry::SetDatabaseUp(bool up, const std::string& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (database_up_ == up) return;
  database_up_ = up;
  if (up) {
    logger_.Info("database reachable");
  } else {
    logger_.Warn("database unreachable; rules keep retrying at their intervals",
                 {{"err", error}});
  }
  PublishLocked();
}

std::shared_ptr<const Snapshot> Registry::Current() const { return std::atomic_load(&current_); }

std::vector<MetricFamily> Registry::SelfMetrics() const {
  std::vector<MetricFamily> families;

  families.push_back(Family("koji_exporter_build_info",
                            "A metric with a constant 1 labeled by the exporter's version and "
                            "source revision.",
                            SampleType::Gauge));
  families.back().metric.push_back(
      Sample(SampleType::Gauge, 1, {{"revision", revision_}, {"version", version_}}));

  const std::tuple<const char*, const char*, double> config_gauges[] = {
      {"koji_exporter_config_last_reload_successful",
       "Whether the last configuration load or reload succeeded (1) or failed (0).",
       last_reload_successful_ ? 1.0 : 0.0},
      {"koji_exporter_config_last_reload_success_timestamp_seconds",
       "Unix time of the last successful configuration load or reload.",
       last_reload_timestamp_seconds_},
      {"koji_exporter_config_hash",
       "Hash of the configuration in force (rules and connection settings), to tell "
       "exporters with different configurations apart.",
       config_hash_},
  };
  for (const auto& [name, help, value] : config_gauges) {
    families.push_back(Family(name, help, SampleType::Gauge));
    families.back().metric.push_back(Sample(SampleType::Gauge, value, {}));
  }

  families.push_back(Family("koji_exporter_database_up",
                            "Whether the last attempt to use the database succeeded (1) or "
                            "failed to connect (0).",
                            SampleType::Gauge));
  families.back().metric.push_back(
      Sample(SampleType::Gauge, database_up_.value_or(false) ? 1 : 0, {}));

  // Per-rule metrics. Counters exist from the start at 0; the gauges appear only once
  // there is something true to report, instead of a made-up 0.
  enum class Presence { kAlways, kAfterRun, kAfterSuccess };
  struct PerRule {
    const char* name;
    const char* help;
    SampleType type;
    double (*value)(const RuleState&);
    Presence presence;
  };
  static const PerRule kPerRule[] = {
      {"koji_exporter_query_last_run_success",
       "Whether the rule's last run succeeded (1) or failed (0).", SampleType::Gauge,
       [](const RuleState& s) { return s.last_success ? 1.0 : 0.0; }, Presence::kAfterRun},
      {"koji_exporter_query_last_run_duration_seconds",
       "Wall-clock duration of the rule's last run, including connecting.", SampleType::Gauge,
       [](const RuleState& s) { return s.last_duration_seconds; }, Presence::kAfterRun},
      {"koji_exporter_query_last_success_timestamp_seconds",
       "Unix time at which the rule last finished a successful run.", SampleType::Gauge,
       [](const RuleState& s) { return s.last_success_timestamp_seconds; },
       Presence::kAfterSuccess},
      {"koji_exporter_query_duration_seconds_total",
       "Wall-clock time the rule's runs took in total, which bounds the database time it "
       "costs; rate() of it is the share of one database session the rule keeps busy.",
       SampleType::Counter, [](const RuleState& s) { return s.duration_seconds_total; },
       Presence::kAlways},
      {"koji_exporter_query_runs_total", "Runs of the rule, successful or not.",
       SampleType::Counter, [](const RuleState& s) { return static_cast<double>(s.runs); },
       Presence::kAlways},
      {"koji_exporter_query_errors_total", "Runs of the rule that failed.", SampleType::Counter,
       [](const RuleState& s) { return static_cast<double>(s.errors); },
       Presence::kAlways},
      {"koji_exporter_query_rows",
       "Rows returned by the rule's last successful run; for an incremental rule, its label "
       "sets.",
       SampleType::Gauge, [](const RuleState& s) { return static_cast<double>(s.rows); },
       Presence::kAfterSuccess},
  };
  for (const auto& metric : kPerRule) {
    families.push_back(Family(metric.name, metric.help, metric.type));
    for (const auto& state : rules_) {
      if (metric.presence == Presence::kAfterRun && !state.has_run) continue;
      if (metric.presence == Presence::kAfterSuccess && state.last_success_timestamp_seconds == 0) {
        continue;
      }
      families.back().metric.push_back(
          Sample(metric.type, metric.value(state), {{"query", state.name}}));
    }
  }

  families.push_back(Family("koji_exporter_query_failures_total",
                            "Failed runs of the rule by reason: timeout (server or client "
                            "deadline), connection, sql (rejected by the server) or mapping "
                            "(result unusable for the rule's metrics).",
                            SampleType::Counter));
  for (const auto& state : rules_) {
    for (const char* reason : {"connection", "mapping", "sql", "timeout"}) {
      const auto found = state.failures_by_reason.find(reason);
      const std::uint64_t count = found == state.failures_by_reason.end() ? 0 : found->second;
      families.back().metric.push_back(Sample(SampleType::Counter, static_cast<double>(count),
                                              {{"query", state.name}, {"reason", reason}}));
    }
  }

  families.push_back(Family(
      "koji_exporter_query_result_problems_total",
      "Odd values in successful rule results: null_label (kept with an empty label), "
      "null_value and invalid_value (sample dropped), duplicate_series (later row dropped), "
      "series_limit (row beyond max_series dropped), label_truncated (label value cut).",
      SampleType::Counter));
  for (const auto& state : rules_) {
    const std::pair<const char*, std::uint64_t> counts[] = {
        {"duplicate_series", state.problems_total.duplicate_series},
        {"invalid_value", state.problems_total.invalid_value},
        {"label_truncated", state.problems_total.label_truncated},
        {"null_label", state.problems_total.null_label},
        {"null_value", state.problems_total.null_value},
        {"series_limit", state.problems_total.series_limit},
    };
    for (const auto& [problem, count] : counts) {
      families.back().metric.push_back(
          Sample(SampleType::Counter, static_cast<double>(count),
                 {{"problem", problem}, {"query", state.name}}));
    }
  }
  return families;
}

void Registry::PublishLocked() {
  std::string self_metrics;
  try {
    self_metrics = RenderExposition(SelfMetrics());
  } catch (const ExpositionError& error) {
    // The self-metrics have fixed names, so this is a bug. The last snapshot stays.
    logger_.Error("exposition rendering failed", {{"err", error.what()}});
    return;
  }
  std::size_t size = self_metrics.size();
  for (const auto& state : rules_) size += state.exposition.size();

  auto snapshot = std::make_shared<Snapshot>();
  snapshot->text.reserve(size);
  for (const auto& state : rules_) snapshot->text += state.exposition;
  snapshot->text += self_metrics;
  snapshot->gzip = GzipCompress(snapshot->text);
  snapshot->created = std::chrono::system_clock::now();
  std::atomic_store(&current_, std::shared_ptr<const Snapshot>(std::move(snapshot)));
}

}  // namespace koji_exporter
