// Formats log events as logfmt or JSON lines and writes them to one shared sink.
#include "koji_exporter/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include <fmt/format.h>

namespace koji_exporter {
namespace {

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::string Timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
      1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03d}Z", buffer, static_cast<int>(millis));
}

// logfmt quotes a value when it is empty or contains a space, a quote, '=' or a control
// character; JSON always quotes. Both escape the same characters.
std::string Escape(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (const unsigned char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

bool NeedsQuotes(const std::string& value) {
  if (value.empty()) return true;
  for (const unsigned char c : value) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
  }
  return false;
}

void AppendLogfmt(std::string& line, const std::string& key, const std::string& value) {
  if (!line.empty()) line += ' ';
  line += key;
  line += '=';
  if (NeedsQuotes(value)) {
    line += '"';
    line += Escape(value);
    line += '"';
  } else {
    line += value;
  }
}

void AppendJson(std::string& line, const std::string& key, const std::string& value) {
  line += line.size() > 1 ? ",\"" : "\"";
  line += Escape(key);
  line += "\":\"";
  line += Escape(value);
  line += '"';
}

}  // namespace

struct Logger::Shared {
  std::mutex mutex;
  Sink sink;
};

bool ParseLogLevel(const std::string& text, LogLevel* level) {
  for (const LogLevel candidate :
       {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (text == LevelName(candidate)) {
      *level = candidate;
      return true;
    }
  }
  return false;
}

bool ParseLogFormat(const std::string& text, LogFormat* format) {
  if (text == "logfmt") {
    *format = LogFormat::kLogfmt;
    return true;
  }
  if (text == "json") {
    *format = LogFormat::kJson;
    return true;
  }
  return false;
}

Logger::Logger(LogLevel level, LogFormat format)
    : Logger(level, format, [](const std::string& line) {
        std::fputs(line.c_str(), stderr);
        std::fputc('\n', stderr);
      }) {}

Logger::Logger(LogLevel level, LogFormat format, Sink sink)
    : shared_(std::make_shared<Shared>()), level_(level), format_(format) {
  shared_->sink = std::move(sink);
}

Logger Logger::With(LogFields context) const {
  Logger copy = *this;
  copy.context_.insert(copy.context_.end(), context.begin(), context.end());
  return copy;
}

void Logger::Debug(const std::string& message, const LogFields& fields) const {
  Log(LogLevel::kDebug, message, fields);
}
void Logger::Info(const std::string& message, const LogFields& fields) const {
  Log(LogLevel::kInfo, message, fields);
}
void Logger::Warn(const std::string& message, const LogFields& fields) const {
  Log(LogLevel::kWarn, message, fields);
}
void Logger::Error(const std::string& message, const LogFields& fields) const {
  Log(LogLevel::kError, message, fields);
}

void Logger::Log(LogLevel level, const std::string& message, const LogFields& fields) const {
  if (!Enabled(level)) return;

  LogFields all = {{"ts", Timestamp()}, {"level", LevelName(level)}, {"msg", message}};
  all.insert(all.end(), context_.begin(), context_.end());
  all.insert(all.end(), fields.begin(), fields.end());

  std::string line;
  if (format_ == LogFormat::kJson) {
    line = "{";
    for (const auto& [key, value] : all) AppendJson(line, key, value);
    line += '}';
  } else {
    for (const auto& [key, value] : all) AppendLogfmt(line, key, value);
  }

  std::lock_guard<std::mutex> lock(shared_->mutex);
  shared_->sink(line);
}

}  // namespace koji_exporter
