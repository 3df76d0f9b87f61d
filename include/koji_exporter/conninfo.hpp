// Builds the libpq connection string from the configured DSN and password, and its
// redacted form for logs. It deals with libpq's conninfo syntax, nothing else.
#pragma once

#include <stdexcept>
#include <string>

#include "koji_exporter/rule.hpp"

namespace koji_exporter {

/// Raised when a DSN cannot be parsed. The message never contains the password.
class ConninfoError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Returns `dsn` (keyword=value conninfo or postgresql:// URL) as keyword=value conninfo,
/// with `password` set when it is not empty, and `application_name=koji_exporter`,
/// `connect_timeout=10` and TCP keepalives (30 s idle, 3 probes 10 s apart) unless the DSN
/// sets them. Throws ConninfoError.
std::string BuildConninfo(const std::string& dsn, const std::string& password);

/// Returns `dsn` as keyword=value conninfo with any password replaced by "********", for
/// logs and error messages. Returns "(invalid dsn)" when it cannot be parsed.
std::string RedactConninfo(const std::string& dsn);

/// Returns the conninfo for `database`: its DSN with the password of its password_file,
/// if any. Throws ConninfoError or std::runtime_error (unreadable password file).
std::string ConninfoFromConfig(const DatabaseConfig& database);

/// Reads the first line of `path` (without the line break) as a password. Throws
/// std::runtime_error naming the file and the system error.
std::string ReadPasswordFile(const std::string& path);

}  // namespace koji_exporter
