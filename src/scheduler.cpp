// Worker threads pick the earliest due rule, run it on their own session and record the
// result; failures stay inside the run that had them.
#include "koji_exporter/scheduler.hpp"

#include <malloc.h>

#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "koji_exporter/retry_policy.hpp"

namespace koji_exporter {
namespace {

using Clock = std::chrono::steady_clock;

// Idle workers wake at least this often, so LastTick() stays fresh on a quiet exporter.
constexpr auto kIdleWake = std::chrono::seconds(1);

// Maximum delay of a rule's first run after the start.
constexpr std::chrono::seconds kMaxStartSpread{10};

// Results of at least this many rows are followed by a malloc_trim.
constexpr std::uint64_t kTrimAfterRows = 1000;

std::string Seconds(std::chrono::duration<double> duration) {
  return fmt::format("{:.3f}", duration.count());
}

void LogProblems(const Logger& logger, const MappedResult& mapped) {
  if (!mapped.problems.Any()) return;
  logger.Warn("rule result has odd values",
              {{"null_label", std::to_string(mapped.problems.null_label)},
               {"null_value", std::to_string(mapped.problems.null_value)},
               {"invalid_value", std::to_string(mapped.problems.invalid_value)},
               {"duplicate_series", std::to_string(mapped.problems.duplicate_series)},
               {"series_limit", std::to_string(mapped.problems.series_limit)},
               {"label_truncated", std::to_string(mapped.problems.label_truncated)},
               {"first", mapped.first_problem}});
}

}  // namespace

RunReport ExecuteRule(QueryRunner& runner, const Rule& rule, Registry& registry,
                      const Logger& logger, IncrementalState* state) {
  const Logger rule_logger =
      logger.With({{"rule", rule.name}, {"file", rule.mark.file}});
  const auto started = Clock::now();
  RunReport report;

  try {
    MappedResult mapped;
    {
      // The rows are freed once mapped, before the samples are rendered.
      const QueryResult result = RunRule(runner, rule, state);
      registry.SetDatabaseUp(true);
      mapped = MapRows(rule, result);
      report.rows = result.rows.size();
    }

    report.success = true;
    report.problems = mapped.problems;
    report.duration = Clock::now() - started;
    report.finished = std::chrono::system_clock::now();
    registry.RecordSuccess(rule, std::move(mapped.families), report);
    // glibc's malloc gives busy threads arenas of their own, and an arena keeps the peak of
    // its largest run. malloc_trim returns the freed pages of a large result to the system.
    if (report.rows >= kTrimAfterRows) malloc_trim(0);

    LogProblems(rule_logger, mapped);
    rule_logger.Debug("rule finished", {{"duration_seconds", Seconds(report.duration)},
                                        {"rows", std::to_string(report.rows)}});
    return report;
  } catch (const QueryError& error) {
    if (error.failure() == QueryFailure::kInterrupted) {
      // The exporter is stopping or replacing its sessions, so the outcome reflects
      // neither the database nor the rule and is neither recorded nor logged.
      report.failure_reason = QueryFailureName(error.failure());
      return report;
    }
    // A lost session is an outage only when a new one cannot be opened either: after
    // pg_terminate_backend or a failover the database may well be reachable.
    const bool reachable = error.failure() != QueryFailure::kConnection || runner.Reconnect();
    registry.SetDatabaseUp(reachable, error.what());
    report.duration = Clock::now() - started;
    report.finished = std::chrono::system_clock::now();
    report.failure_reason = QueryFailureName(error.failure());
    report.sqlstate = error.sqlstate();
    registry.RecordFailure(rule, report);
    LogFields fields = {{"reason", QueryFailureName(error.failure())},
                        {"duration_seconds", Seconds(report.duration)}};
    if (!error.sqlstate().empty()) fields.emplace_back("sqlstate", error.sqlstate());
    fields.emplace_back("err", error.what());
    rule_logger.Warn("rule failed", fields);
  } catch (const MappingError& error) {
    report.duration = Clock::now() - started;
    report.finished = std::chrono::system_clock::now();
    report.failure_reason = "mapping";
    registry.RecordFailure(rule, report);
    rule_logger.Warn("rule failed", {{"reason", "mapping"},
                                     {"duration_seconds", Seconds(report.duration)},
                                     {"err", error.what()}});
  }
  return report;
}

Scheduler::Scheduler(std::vector<Rule> rules, int workers, std::string conninfo,
                     Registry& registry, Logger logger)
    : worker_count_(std::max(1, workers)),
      conninfo_(std::move(conninfo)),
      registry_(registry),
      logger_(std::move(logger)) {
  for (auto& rule : rules) slots_.push_back(NewSlot(std::move(rule), Clock::time_point{}));
  max_silence_ = ComputeMaxSilence(slots_).count();
  Tick();
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  // The first runs are spread over a tenth of each rule's interval, at most 10 s, so that
  // the heavy rules do not all hit the replica at once; later runs keep the spread, since
  // each is due one interval after the previous one started.
  const auto now = Clock::now();
  std::mt19937 random(std::random_device{}());
  std::uniform_real_distribution<double> share(0.0, 1.0);
  for (auto& slot : slots_) {
    const auto spread = std::min<Clock::duration>(slot->rule.interval / 10, kMaxStartSpread);
    slot->next_due =
        now + std::chrono::duration_cast<Clock::duration>(spread * share(random));
  }
  for (int i = 0; i < worker_count_; ++i) {
    runners_.push_back(std::make_unique<QueryRunner>(conninfo_));
  }
  // All runners exist before the first worker starts: a worker that looked its runner up
  // in runners_ while a later push_back reallocated the vector would read freed memory.
  for (int i = 0; i < worker_count_; ++i) {
    QueryRunner* runner = runners_[i].get();
    workers_.emplace_back([this, runner, i] { WorkerLoop(*runner, i); });
  }
}

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wakeup_.notify_all();
  for (auto& runner : runners_) runner->Interrupt();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
  runners_.clear();
}

void Scheduler::Tick() { last_tick_ = Clock::now().time_since_epoch().count(); }

Clock::time_point Scheduler::LastTick() const {
  return Clock::time_point(Clock::duration(last_tick_.load()));
}

std::shared_ptr<Scheduler::Slot> Scheduler::NewSlot(Rule rule, Clock::time_point due) {
  auto slot = std::make_shared<Slot>();
  slot->fingerprint = RuleFingerprint(rule);
  if (rule.incremental) slot->incremental = std::make_unique<IncrementalState>();
  slot->rule = std::move(rule);
  slot->next_due = due;
  return slot;
}

Clock::duration Scheduler::ComputeMaxSilence(const std::vector<std::shared_ptr<Slot>>& slots) {
  Clock::duration longest{0};
  for (const auto& slot : slots) {
    longest = std::max<Clock::duration>(longest, QueryRunner::ClientDeadline(slot->rule.timeout));
    // The first run of an incremental rule sums the whole table under its seed timeout.
    if (slot->rule.incremental) {
      longest = std::max<Clock::duration>(
          longest, QueryRunner::ClientDeadline(slot->rule.incremental->seed_timeout) +
                       QueryRunner::ClientDeadline(slot->rule.timeout));
    }
  }
  return longest + std::chrono::seconds(30);
}

Clock::duration Scheduler::MaxSilence() const { return Clock::duration(max_silence_.load()); }

void Scheduler::Reconfigure(std::vector<Rule> rules) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<Slot>> slots;
  for (auto& rule : rules) {
    std::shared_ptr<Slot> old;
    for (const auto& candidate : slots_) {
      if (candidate->rule.name == rule.name) old = candidate;
    }
    if (old && old->fingerprint == RuleFingerprint(rule)) {
      slots.push_back(old);
      continue;
    }
    slots.push_back(NewSlot(std::move(rule), Clock::now()));
    if (old && old->running) slots.back()->predecessor = old;
  }
  slots_ = std::move(slots);
  // Old slots that are still running finish their run and are then dropped with the
  // worker's reference; nothing schedules them again.
  max_silence_ = ComputeMaxSilence(slots_).count();
  wakeup_.notify_all();
}

std::shared_ptr<Scheduler::Slot> Scheduler::TakeDueSlotLocked(Clock::time_point now,
                                                              Clock::time_point* wake_at) {
  std::shared_ptr<Slot> earliest;
  for (auto& slot : slots_) {
    if (slot->running) continue;
    if (slot->predecessor) {
      if (slot->predecessor->running) continue;
      slot->predecessor.reset();
    }
    if (!earliest || slot->next_due < earliest->next_due) earliest = slot;
  }
  *wake_at = now + kIdleWake;
  if (earliest == nullptr) return nullptr;
  if (earliest->next_due > now) {
    *wake_at = std::min(*wake_at, earliest->next_due);
    return nullptr;
  }
  earliest->running = true;
  return earliest;
}

void Scheduler::ScheduleNextRun(Slot& slot, const RunReport& report, Clock::time_point started,
                                double jitter, const Logger& logger) {
  const Clock::time_point now = Clock::now();
  if (report.success) {
    slot.consecutive_failures = 0;
    // The next run is due one interval after this one started; a run that took longer
    // than its interval is followed at once.
    slot.next_due = std::max(started + slot.rule.interval, now);
    return;
  }

  ++slot.consecutive_failures;
  const RetryClass retry_class = ClassifyFailure(report.failure_reason, report.sqlstate);
  const auto delay =
      RetryDelay(retry_class, slot.consecutive_failures, slot.rule.interval, jitter);
  slot.next_due = now + delay;
  logger.Debug("rule retry scheduled",
               {{"rule", slot.rule.name},
                {"consecutive_failures", std::to_string(slot.consecutive_failures)},
                {"retry_in_seconds", Seconds(delay)}});
}

void Scheduler::WorkerLoop(QueryRunner& runner, int worker_index) {
  const Logger worker_logger = logger_.With({{"worker", std::to_string(worker_index)}});
  std::mt19937 random(std::random_device{}());
  std::uniform_real_distribution<double> jitter(-1.0, 1.0);

  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    Tick();
    Clock::time_point wake_at;
    const std::shared_ptr<Slot> slot = TakeDueSlotLocked(Clock::now(), &wake_at);
    if (slot == nullptr) {
      wakeup_.wait_until(lock, wake_at);
      continue;
    }

    // The slot's rule is not touched by anyone else while `running` is set, so it can be
    // read without the lock.
    lock.unlock();
    const auto started = Clock::now();
    const RunReport report =
        ExecuteRule(runner, slot->rule, registry_, worker_logger, slot->incremental.get());
    lock.lock();

    ScheduleNextRun(*slot, report, started, jitter(random), worker_logger);
    slot->running = false;
    wakeup_.notify_all();
  }
}

}  // namespace koji_exporter
