// Parses DSNs with libpq's own parser, so both conninfo and URL forms are accepted
// exactly as psql accepts them.
#include "koji_exporter/conninfo.hpp"

#include <libpq-fe.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <vector>

#include <fmt/format.h>

namespace koji_exporter {
namespace {

using Options = std::vector<std::pair<std::string, std::string>>;

// Returns the options the DSN sets, in libpq's keyword order.
Options ParseDsn(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(dsn.c_str(), &error);
  if (parsed == nullptr) {
    std::string message = error != nullptr ? error : "out of memory";
    PQfreemem(error);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    // libpq quotes the offending fragment, which can be part of a password.
    if (dsn.find("password") != std::string::npos || dsn.find('@') != std::string::npos) {
      message = "the text could not be parsed";
    }
    throw ConninfoError(fmt::format("invalid database dsn: {}", message));
  }
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> owner(parsed, PQconninfoFree);

  Options options;
  for (PQconninfoOption* option = parsed; option->keyword != nullptr; ++option) {
    if (option->val != nullptr) options.emplace_back(option->keyword, option->val);
  }
  return options;
}

std::string QuoteValue(const std::string& value) {
  std::string out = "'";
  for (const char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

std::string Join(const Options& options) {
  std::string out;
  for (const auto& [keyword, value] : options) {
    if (!out.empty()) out += ' ';
    out += keyword + "=" + QuoteValue(value);
  }
  return out;
}

void SetDefault(Options& options, const std::string& keyword, const std::string& value) {
  for (const auto& option : options) {
    if (option.first == keyword) return;
  }
  options.emplace_back(keyword, value);
}

}  // namespace

std::string BuildConninfo(const std::string& dsn, const std::string& password) {
  Options options = ParseDsn(dsn);
  if (!password.empty()) {
    for (auto it = options.begin(); it != options.end();) {
      it = it->first == "password" ? options.erase(it) : it + 1;
    }
    options.emplace_back("password", password);
  }
  SetDefault(options, "application_name", "koji_exporter");
  SetDefault(options, "connect_timeout", "10");
  // TCP keepalives find a replica that vanished without closing the connection (a host
  // that crashed or a firewall that dropped the state) within about a minute.
  SetDefault(options, "keepalives", "1");
  SetDefault(options, "keepalives_idle", "30");
  SetDefault(options, "keepalives_interval", "10");
  SetDefault(options, "keepalives_count", "3");
  return Join(options);
}

std::string RedactConninfo(const std::string& dsn) {
  Options options;
  try {
    options = ParseDsn(dsn);
  } catch (const ConninfoError&) {
    return "(invalid dsn)";
  }
  for (auto& option : options) {
    if (option.first == "password") option.second = "********";
  }
  return Join(options);
}

std::string ConninfoFromConfig(const DatabaseConfig& database) {
  const std::string password =
      database.password_file.empty() ? "" : ReadPasswordFile(database.password_file);
  return BuildConninfo(database.dsn, password);
}

std::string ReadPasswordFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    throw std::runtime_error(
        fmt::format("cannot read password file \"{}\": {}", path, std::strerror(errno)));
  }
  std::string line;
  std::getline(file, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace koji_exporter
