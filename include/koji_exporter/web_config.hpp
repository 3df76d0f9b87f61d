// Loads the web configuration file (the Prometheus exporter-toolkit format: TLS certificate
// and basic auth users) and checks Basic credentials. It does not serve HTTP.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace koji_exporter {

/// Validated content of a --web.config.file.
struct WebConfig {
  /// PEM certificate and private key for HTTPS; both empty for plain HTTP. Relative paths
  /// in the file are resolved against the file's directory.
  std::string tls_cert_file;
  std::string tls_key_file;
  /// User name -> bcrypt hash ($2a$, $2b$ or $2y$); empty when no password is required.
  std::map<std::string, std::string> basic_auth_users;

  bool UsesTls() const { return !tls_cert_file.empty(); }
};

/// Parses the text of a web configuration file. `file_name` is used in messages and as the
/// base of relative certificate paths. Checks that the certificate and key files can be
/// read, but not that they are valid PEM (the HTTP server does that when it starts).
/// Throws ConfigError listing every problem as `file:line:col: problem`; no message
/// contains a password hash.
WebConfig ParseWebConfig(const std::string& text, const std::string& file_name);

/// Reads and parses the web configuration file at `path`. Throws ConfigError.
WebConfig LoadWebConfig(const std::string& path);

/// Returns whether `password` matches the bcrypt `hash`, compared in constant time. False
/// for a hash that libcrypt rejects.
bool VerifyBcryptPassword(const std::string& password, const std::string& hash);

/// Checks `Authorization: Basic` header values against a fixed set of users. A verified
/// password is remembered per user, so repeated scrapes skip bcrypt, which costs tens of
/// milliseconds per check by design. Thread-safe.
class BasicAuth {
 public:
  /// `users` maps user names to bcrypt hashes; with no users, every check fails.
  explicit BasicAuth(std::map<std::string, std::string> users);

  /// Returns whether `authorization` is `Basic <base64 of user:password>` for a listed user
  /// and that user's password.
  bool Check(const std::string& authorization) const;

 private:
  std::map<std::string, std::string> users_;
  mutable std::mutex mutex_;
  /// User name -> the last password that matched the user's hash.
  mutable std::map<std::string, std::string> verified_;
};

}  // namespace koji_exporter
