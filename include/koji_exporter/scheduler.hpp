// Runs every rule on its own interval on a small pool of database sessions and hands the
// results to the registry. It deals with timing and failure isolation, not SQL or HTTP.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "koji_exporter/incremental_rule.hpp"
#include "koji_exporter/log.hpp"
#include "koji_exporter/query_runner.hpp"
#include "koji_exporter/registry.hpp"
#include "koji_exporter/rule.hpp"

namespace koji_exporter {

/// Runs `rule` once on `runner`, maps the rows and records the outcome in `registry`,
/// logging a failure or odd values once. Never throws for a rule or database fault; the
/// returned report describes the outcome. Sets the registry's database-up state. An
/// incremental rule needs its `state`, which keeps its sums between runs.
RunReport ExecuteRule(QueryRunner& runner, const Rule& rule, Registry& registry,
                      const Logger& logger, IncrementalState* state = nullptr);

/// Background scheduler. Each worker thread owns one QueryRunner (one session), so at most
/// `workers` rules run at once and a slow rule delays only the worker that runs it.
/// A rule is never run twice at the same time.
class Scheduler {
 public:
  Scheduler(std::vector<Rule> rules, int workers, std::string conninfo, Registry& registry,
            Logger logger);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /// Starts the workers; every rule runs once right away, then every `interval`.
  void Start();
  /// Stops the workers, interrupting the queries they run, and waits for them to end.
  void Stop();

  /// Switches to the rules of a reloaded configuration, keeping the sessions. A rule
  /// whose fingerprint is unchanged keeps its schedule. A new or changed rule runs at once,
  /// but never while its old definition is still running.
  void Reconfigure(std::vector<Rule> rules);

  /// Last time a worker was idle or finished a run. /healthz compares it with
  /// MaxSilence() to tell a stuck scheduler from a busy one.
  std::chrono::steady_clock::time_point LastTick() const;
  /// Maximum time a healthy scheduler can go without a tick: the longest client-side
  /// deadline of a run plus a margin for connecting.
  std::chrono::steady_clock::duration MaxSilence() const;

 private:
  struct Slot {
    Rule rule;
    std::string fingerprint;
    std::chrono::steady_clock::time_point next_due;
    bool running = false;
    int consecutive_failures = 0;
    // The sums of an incremental rule. A reload keeps the slot, and so the sums, of a rule
    // whose fingerprint did not change.
    std::unique_ptr<IncrementalState> incremental;
    // The slot of the rule's previous definition after a reload; the rule waits while it
    // runs, so that two definitions of one rule never run at once.
    std::shared_ptr<Slot> predecessor;
  };

  static std::shared_ptr<Slot> NewSlot(Rule rule, std::chrono::steady_clock::time_point due);
  static std::chrono::steady_clock::duration ComputeMaxSilence(
      const std::vector<std::shared_ptr<Slot>>& slots);

  void WorkerLoop(QueryRunner& runner, int worker_index);
  std::shared_ptr<Slot> TakeDueSlotLocked(std::chrono::steady_clock::time_point now,
                                          std::chrono::steady_clock::time_point* wake_at);
  void Tick();
  void ScheduleNextRun(Slot& slot, const RunReport& report,
                       std::chrono::steady_clock::time_point started, double jitter,
                       const Logger& logger);

  // Workers hold a slot by shared_ptr while they run it, so a reload can replace the list.
  std::vector<std::shared_ptr<Slot>> slots_;
  std::atomic<std::chrono::steady_clock::rep> max_silence_{0};
  int worker_count_;
  std::string conninfo_;
  Registry& registry_;
  Logger logger_;

  std::mutex mutex_;
  std::condition_variable wakeup_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<QueryRunner>> runners_;
  std::vector<std::thread> workers_;
  std::atomic<std::chrono::steady_clock::rep> last_tick_{0};
};

}  // namespace koji_exporter
