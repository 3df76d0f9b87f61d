// Structured logging in logfmt or JSON, one event per line. It deals with formatting and levels,
// not where events come from.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace koji_exporter {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class LogFormat { kLogfmt, kJson };

/// One key=value pair of an event. Keys are snake_case and name their unit.
using LogField = std::pair<std::string, std::string>;
using LogFields = std::vector<LogField>;

/// Parses "debug", "info", "warn" or "error"; returns false for anything else.
bool ParseLogLevel(const std::string& text, LogLevel* level);
/// Parses "logfmt" or "json"; returns false for anything else.
bool ParseLogFormat(const std::string& text, LogFormat* format);

/// Writes events as `ts=... level=... msg="..." key=value ...` lines. Copies are cheap and
/// share the sink; With() adds context fields that every event of the copy carries.
/// Thread-safe: lines from several threads never interleave.
class Logger {
 public:
  using Sink = std::function<void(const std::string& line)>;

  /// Logs to standard error.
  Logger(LogLevel level = LogLevel::kInfo, LogFormat format = LogFormat::kLogfmt);
  /// Logs to `sink`, for tests; `sink` is called under the logger's lock.
  Logger(LogLevel level, LogFormat format, Sink sink);

  Logger With(LogFields context) const;

  void Debug(const std::string& message, const LogFields& fields = {}) const;
  void Info(const std::string& message, const LogFields& fields = {}) const;
  void Warn(const std::string& message, const LogFields& fields = {}) const;
  void Error(const std::string& message, const LogFields& fields = {}) const;
  void Log(LogLevel level, const std::string& message, const LogFields& fields) const;

  bool Enabled(LogLevel level) const { return level >= level_; }

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
  LogLevel level_;
  LogFormat format_;
  LogFields context_;
};

}  // namespace koji_exporter
