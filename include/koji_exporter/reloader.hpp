// Applies a reloaded configuration to the running exporter, on SIGHUP or POST /-/reload;
// owns the scheduler because a change of connection settings replaces it.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "koji_exporter/log.hpp"
#include "koji_exporter/registry.hpp"
#include "koji_exporter/rule.hpp"
#include "koji_exporter/scheduler.hpp"

namespace koji_exporter {

/// Holds the configuration in force and the scheduler that runs it. Thread-safe: reloads
/// are serialized, and Healthy() may be called from any thread.
class Reloader {
 public:
  /// `config` and `conninfo` are the configuration loaded at startup and the connection
  /// string built from it.
  Reloader(std::string config_path, Config config, std::string conninfo, Registry& registry,
           Logger logger);
  ~Reloader();
  Reloader(const Reloader&) = delete;
  Reloader& operator=(const Reloader&) = delete;

  /// Starts running the rules.
  void Start();
  /// Stops the scheduler, interrupting running queries.
  void Stop();

  /// Loads the main file and the rule files again. On success the registry and the
  /// scheduler switch to the new rules (unchanged rules keep their values and schedule,
  /// and the sessions are kept unless the connection settings changed) and "" is returned.
  /// On failure the old configuration keeps running, the problems are logged, and they
  /// are returned one per line. Either way koji_exporter_config_last_reload_successful
  /// records the outcome.
  std::string Reload();

  /// Whether the scheduler made progress recently (see Scheduler::MaxSilence()).
  bool Healthy() const;

 private:
  std::shared_ptr<Scheduler> CurrentScheduler() const;
  std::shared_ptr<Scheduler> NewScheduler() const;

  std::mutex reload_mutex_;
  std::string config_path_;
  Config config_;
  std::string conninfo_;
  Registry& registry_;
  Logger logger_;
  // Read by Healthy() from HTTP threads while a reload may replace it.
  std::shared_ptr<Scheduler> scheduler_;
};

}  // namespace koji_exporter
