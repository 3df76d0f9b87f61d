// Reads the exporter-toolkit web configuration (tls_server_config, basic_auth_users) and
// verifies Basic credentials with libcrypt's bcrypt. It has no HTTP or TLS code.
#include "koji_exporter/web_config.hpp"

#include <crypt.h>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "config_yaml.hpp"
#include "koji_exporter/rule_loader.hpp"

namespace koji_exporter {
namespace {

using detail::Entries;
using detail::Entry;
using detail::Scope;

constexpr std::array<const char*, 2> kTopLevelKeys = {"tls_server_config", "basic_auth_users"};
constexpr std::array<const char*, 1> kTopLevelUnsupported = {"http_server_config"};
constexpr std::array<const char*, 2> kTlsKeys = {"cert_file", "key_file"};
// Keys of the exporter-toolkit's TLS section that koji_exporter does not implement.
constexpr std::array<const char*, 11> kTlsUnsupported = {
    "cert",          "key",           "client_auth_type",  "client_ca_file",
    "client_ca",     "client_allowed_sans", "min_version", "max_version",
    "cipher_suites", "curve_preferences",   "prefer_server_cipher_suites"};

// Reads a mapping like detail::ReadEntries, but reports keys of the exporter-toolkit format
// that koji_exporter does not implement as "not supported" rather than as unknown.
template <std::size_t N, std::size_t M>
Entries ReadWebEntries(const YAML::Node& map, const char* section,
                       const std::array<const char*, N>& supported,
                       const std::array<const char*, M>& unsupported, const Scope& scope) {
  Entries entries;
  for (const auto& pair : map) {
    if (!pair.first.IsScalar()) {
      scope.Report(pair.first.Mark(), fmt::format("a key in {} must be a string, but {}", section,
                                                  detail::DescribeNode(pair.first)));
      continue;
    }
    const std::string& key = pair.first.Scalar();
    const auto contains = [&key](const auto& keys) {
      return std::find(keys.begin(), keys.end(), key) != keys.end();
    };
    if (contains(supported)) {
      entries.emplace(key, Entry{pair.first, pair.second});
    } else if (contains(unsupported)) {
      scope.Report(pair.first.Mark(),
                   fmt::format("key \"{}\" in {} is not supported by koji_exporter (supported: {})",
                               key, section, fmt::join(supported, ", ")));
    } else {
      scope.Report(pair.first.Mark(), fmt::format("unknown key \"{}\" in {} (allowed: {})", key,
                                                  section, fmt::join(supported, ", ")));
    }
  }
  return entries;
}

// Returns the errno text for why `path` cannot be read, or std::nullopt when it can.
std::optional<std::string> ReadProblem(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return std::string(std::strerror(errno));
  // fopen() succeeds on a directory; the first read then fails with EISDIR.
  std::fgetc(file);
  const int read_errno = std::ferror(file) != 0 ? errno : 0;
  std::fclose(file);
  if (read_errno != 0) return std::string(std::strerror(read_errno));
  return std::nullopt;
}

// Reads a certificate or key path, resolved against `base_directory`, and checks that the
// file can be read.
std::string ReadTlsFile(const Entries& entries, const std::string& key,
                        const std::filesystem::path& base_directory, const Scope& scope) {
  const auto value = detail::ReadString(entries, key, scope);
  if (!value) return "";
  const Entry& entry = *detail::FindEntry(entries, key);
  if (value->empty()) {
    scope.Report(entry.Mark(), fmt::format("\"{}\" must not be empty", key));
    return "";
  }
  const std::string path = (base_directory / *value).string();
  if (const auto problem = ReadProblem(path)) {
    scope.Report(entry.Mark(), fmt::format("could not read {} \"{}\": {}", key, path, *problem));
    return "";
  }
  return path;
}

void ReadTls(const Entry& section, const std::filesystem::path& base_directory,
             WebConfig& config, const Scope& scope) {
  if (!detail::CheckType(section, "tls_server_config", YAML::NodeType::Map,
                         "a map with cert_file and key_file", scope)) {
    return;
  }
  const Entries entries =
      ReadWebEntries(section.value, "tls_server_config", kTlsKeys, kTlsUnsupported, scope);
  detail::RequireKeys(section.value, entries, {"cert_file", "key_file"}, scope);
  config.tls_cert_file = ReadTlsFile(entries, "cert_file", base_directory, scope);
  config.tls_key_file = ReadTlsFile(entries, "key_file", base_directory, scope);
}

bool IsBcryptAlphabet(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '/';
}

// Checks the modular crypt format of bcrypt: "$2b$", a two-digit cost from 04 to 31, "$"
// and 53 characters of salt and hash.
bool IsBcryptHash(const std::string& hash) {
  if (hash.size() != 60) return false;
  const std::string prefix = hash.substr(0, 4);
  if (prefix != "$2a$" && prefix != "$2b$" && prefix != "$2y$") return false;
  if (!std::isdigit(static_cast<unsigned char>(hash[4])) ||
      !std::isdigit(static_cast<unsigned char>(hash[5])) || hash[6] != '$') {
    return false;
  }
  const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  if (cost < 4 || cost > 31) return false;
  return std::all_of(hash.begin() + 7, hash.end(), IsBcryptAlphabet);
}

// Reads one user. Messages name the user but never show the hash.
void ReadUser(const YAML::Node& key, const YAML::Node& value, WebConfig& config,
              const Scope& scope) {
  if (!key.IsScalar()) {
    scope.Report(key.Mark(), fmt::format("a user name in basic_auth_users must be a string, but {}",
                                         detail::DescribeNode(key)));
    return;
  }
  const std::string& user = key.Scalar();
  bool valid = true;
  if (user.empty()) {
    scope.Report(key.Mark(), "a user name in basic_auth_users must not be empty");
    valid = false;
  } else if (user.find(':') != std::string::npos) {
    scope.Report(key.Mark(), fmt::format("user \"{}\": a user name must not contain \":\", "
                                         "because Basic auth separates it from the password with one",
                                         user));
    valid = false;
  }

  const YAML::Mark value_mark = Entry{key, value}.Mark();
  if (!value.IsScalar()) {
    scope.Report(value_mark, fmt::format("user \"{}\": the password hash must be a string, but {}",
                                         user, detail::DescribeNode(value)));
    return;
  }
  if (!IsBcryptHash(value.Scalar())) {
    scope.Report(value_mark,
                 fmt::format("user \"{}\": the password hash is not a bcrypt hash: expected $2a$, "
                             "$2b$ or $2y$, a cost from 04 to 31, \"$\" and 53 characters",
                             user));
    return;
  }
  if (valid) config.basic_auth_users.emplace(user, value.Scalar());
}

void ReadUsers(const Entry& section, WebConfig& config, const Scope& scope) {
  if (!detail::CheckType(section, "basic_auth_users", YAML::NodeType::Map,
                         "a map of user names to bcrypt hashes", scope)) {
    return;
  }
  for (const auto& pair : section.value) ReadUser(pair.first, pair.second, config, scope);
}

// Returns whether `a` and `b` are equal, taking a time that depends only on their lengths.
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  const std::size_t length = std::max(a.size(), b.size());
  unsigned difference = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < length; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    difference |= static_cast<unsigned>(x ^ y);
  }
  return difference == 0;
}

// Decodes standard base64 with padding; std::nullopt for any other text.
std::optional<std::string> DecodeBase64(const std::string& text) {
  constexpr const char* kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (text.size() % 4 != 0) return std::nullopt;
  std::string decoded;
  unsigned bits = 0;
  int bit_count = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '=') {
      // Padding: at most two characters, and only at the end.
      if (text.size() - i > 2 || text.find_first_not_of('=', i) != std::string::npos) {
        return std::nullopt;
      }
      break;
    }
    const char* found = std::strchr(kAlphabet, text[i]);
    if (found == nullptr || text[i] == '\0') return std::nullopt;
    bits = (bits << 6) | static_cast<unsigned>(found - kAlphabet);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      decoded += static_cast<char>((bits >> bit_count) & 0xFF);
    }
  }
  return decoded;
}

struct Credentials {
  std::string user;
  std::string password;
};

// Parses an Authorization header value of the Basic scheme (RFC 7617).
std::optional<Credentials> ParseBasicAuthorization(const std::string& authorization) {
  const auto space = authorization.find(' ');
  if (space == std::string::npos) return std::nullopt;
  std::string scheme = authorization.substr(0, space);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "basic") return std::nullopt;

  const auto start = authorization.find_first_not_of(' ', space);
  if (start == std::string::npos) return std::nullopt;
  const auto decoded = DecodeBase64(authorization.substr(start));
  if (!decoded) return std::nullopt;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return Credentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

}  // namespace

WebConfig ParseWebConfig(const std::string& text, const std::string& file_name) {
  detail::ProblemList problems(file_name);
  const Scope scope{problems, ""};
  const auto root = detail::LoadDocument(text, problems);
  if (!root) throw ConfigError(problems.InFileOrder());

  WebConfig config;
  if (root->IsNull()) return config;  // an empty file: plain HTTP without passwords
  if (!root->IsMap()) {
    scope.Report(root->Mark(),
                 fmt::format("the web configuration must be a map with tls_server_config and "
                             "basic_auth_users, but {}",
                             detail::DescribeNode(*root)));
    throw ConfigError(problems.InFileOrder());
  }
  detail::DuplicateKeyChecker().Check(*root, scope);

  const Entries entries =
      ReadWebEntries(*root, "the web configuration", kTopLevelKeys, kTopLevelUnsupported, scope);
  const std::filesystem::path base_directory = std::filesystem::path(file_name).parent_path();
  if (const Entry* tls = detail::FindEntry(entries, "tls_server_config")) {
    ReadTls(*tls, base_directory, config, scope);
  }
  if (const Entry* users = detail::FindEntry(entries, "basic_auth_users")) {
    ReadUsers(*users, config, scope);
  }
  if (!problems.empty()) throw ConfigError(problems.InFileOrder());
  return config;
}

WebConfig LoadWebConfig(const std::string& path) {
  if (const auto problem = ReadProblem(path)) {
    throw ConfigError({fmt::format("{}: could not read web configuration file: {}", path, *problem)});
  }
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return ParseWebConfig(text.str(), path);
}

bool VerifyBcryptPassword(const std::string& password, const std::string& hash) {
  // crypt_r() reads a C string, so a password with a NUL byte would be cut short there.
  if (password.find('\0') != std::string::npos) return false;
  // struct crypt_data is about 32 KiB, too large for a worker thread's stack; make_unique
  // zeroes it, as crypt_r() requires before first use.
  auto data = std::make_unique<crypt_data>();
  const char* result = crypt_r(password.c_str(), hash.c_str(), data.get());
  // libcrypt returns a string starting with "*" for a setting it does not support.
  if (result == nullptr || result[0] == '*') return false;
  return ConstantTimeEquals(result, hash);
}

BasicAuth::BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {}

bool BasicAuth::Check(const std::string& authorization) const {
  const auto credentials = ParseBasicAuthorization(authorization);
  if (!credentials || users_.empty()) return false;
  const auto user = users_.find(credentials->user);
  if (user == users_.end()) {
    // Spend the time of a real check, so response times do not tell which users exist.
    VerifyBcryptPassword(credentials->password, users_.begin()->second);
    return false;
  }

  {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto verified = verified_.find(user->first);
    if (verified != verified_.end() &&
        ConstantTimeEquals(verified->second, credentials->password)) {
      return true;
    }
  }
  // bcrypt runs outside the lock, so a slow check does not hold up other requests.
  if (!VerifyBcryptPassword(credentials->password, user->second)) return false;
  const std::lock_guard<std::mutex> lock(mutex_);
  verified_[user->first] = credentials->password;
  return true;
}

}  // namespace koji_exporter
