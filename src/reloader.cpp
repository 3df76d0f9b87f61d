// Loads the configuration again and moves the registry and the scheduler over to it, or
// keeps the old one when the new one is unusable.
#include "koji_exporter/reloader.hpp"

#include <atomic>
#include <chrono>

#include <fmt/format.h>

#include "koji_exporter/conninfo.hpp"
#include "koji_exporter/rule_loader.hpp"

namespace koji_exporter {

Reloader::Reloader(std::string config_path, Config config, std::string conninfo,
                   Registry& registry, Logger logger)
    : config_path_(std::move(config_path)),
      config_(std::move(config)),
      conninfo_(std::move(conninfo)),
      registry_(registry),
      logger_(std::move(logger)) {
  std::atomic_store(&scheduler_, NewScheduler());
  registry_.RecordReload(true, ConfigHash(config_, conninfo_), std::chrono::system_clock::now());
}

Reloader::~Reloader() { Stop(); }

std::shared_ptr<Scheduler> Reloader::NewScheduler() const {
  return std::make_shared<Scheduler>(config_.rules, config_.database.max_connections, conninfo_,
                                     registry_, logger_);
}

std::shared_ptr<Scheduler> Reloader::CurrentScheduler() const {
  return std::atomic_load(&scheduler_);
}

void Reloader::Start() { CurrentScheduler()->Start(); }

void Reloader::Stop() { CurrentScheduler()->Stop(); }

bool Reloader::Healthy() const {
  const std::shared_ptr<Scheduler> scheduler = CurrentScheduler();
  return std::chrono::steady_clock::now() - scheduler->LastTick() < scheduler->MaxSilence();
}

std::string Reloader::Reload() {
  std::lock_guard<std::mutex> lock(reload_mutex_);
  const auto now = std::chrono::system_clock::now();

  Config next;
  std::string conninfo;
  try {
    next = LoadConfig(config_path_);
    conninfo = ConninfoFromConfig(next.database);
  } catch (const ConfigError& error) {
    for (const auto& problem : error.problems()) {
      logger_.Error("configuration reload failed; the old configuration stays in force",
                    {{"config", config_path_}, {"problem", problem}});
    }
    registry_.RecordReload(false, 0, now);
    return error.what();
  } catch (const std::exception& error) {
    const std::string problem = fmt::format("{}: database: {}", config_path_, error.what());
    logger_.Error("configuration reload failed; the old configuration stays in force",
                  {{"config", config_path_}, {"problem", problem}});
    registry_.RecordReload(false, 0, now);
    return problem;
  }

  if (next.listen_address != config_.listen_address) {
    logger_.Warn("web.listen_address changed; it takes effect at the next restart",
                 {{"listen_address", next.listen_address}});
  }
  const bool same_sessions = conninfo == conninfo_ &&
                             next.database.max_connections == config_.database.max_connections;
  const double hash = ConfigHash(next, conninfo);
  config_ = std::move(next);
  conninfo_ = std::move(conninfo);

  registry_.Reconfigure(config_.rules);
  if (same_sessions) {
    CurrentScheduler()->Reconfigure(config_.rules);
  } else {
    // The old scheduler stops first, so the database never has both sets of sessions open.
    CurrentScheduler()->Stop();
    std::shared_ptr<Scheduler> replacement = NewScheduler();
    replacement->Start();
    std::atomic_store(&scheduler_, std::move(replacement));
  }
  registry_.RecordReload(true, hash, now);
  logger_.Info("configuration reloaded",
               {{"config", config_path_},
                {"rules", std::to_string(config_.rules.size())},
                {"sessions_replaced", same_sessions ? "false" : "true"},
                {"database", RedactConninfo(config_.database.dsn)}});
  return "";
}

}  // namespace koji_exporter
