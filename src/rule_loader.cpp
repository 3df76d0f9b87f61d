// Turns the main configuration file and the rule files it names into a validated Config.
// Reads the main file, expands its globs and checks names across files. No PostgreSQL, no HTTP.
#include "koji_exporter/rule_loader.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <glob.h>
#include <sys/socket.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "config_yaml.hpp"
#include "duration.hpp"
#include "rule_file.hpp"

namespace koji_exporter {

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error(fmt::format("{}", fmt::join(problems, "\n"))),
      problems_(std::move(problems)) {}

namespace detail {

namespace {

constexpr char kDefaultListenAddress[] = ":19716";
constexpr char kDefaultRulePattern[] = "queries/*.yaml";
constexpr int kMaxConnectionsLimit = 64;

// The keys allowed in each mapping, in the order that "unknown key" messages list them.
constexpr std::array<const char*, 4> kMainFileKeys = {"database", "web", "rule_files", "defaults"};
constexpr std::array<const char*, 3> kDatabaseKeys = {"dsn", "password_file", "max_connections"};
constexpr std::array<const char*, 1> kWebKeys = {"listen_address"};
constexpr std::array<const char*, 2> kDefaultsKeys = {"interval", "timeout"};

std::string ErrnoText(int error) {
  return std::error_code(error, std::generic_category()).message();
}

// ---------------------------------------------------------------------------------------
// Names across files

// The first definition of every rule name and metric name seen so far, over all files.
class NameIndex {
 public:
  // Registers the names of `rule`, reporting those already defined.
  void Add(const Rule& rule, ProblemList& problems) {
    if (!rule.name.empty()) {
      const auto [first, inserted] = rules_.emplace(rule.name, rule.mark);
      if (!inserted) {
        problems.Add(
            rule.mark, rule.name,
            fmt::format("duplicate rule name (first defined at {})", FormatMark(first->second)));
      }
    }
    for (const auto& metric : rule.metrics) {
      if (metric.name.empty()) continue;
      const auto [first, inserted] = metrics_.emplace(metric.name, metric.mark);
      if (!inserted) {
        problems.Add(metric.mark, rule.name,
                     fmt::format("duplicate metric \"{}\" (first defined at {})", metric.name,
                                 FormatMark(first->second)));
      }
    }
  }

 private:
  std::map<std::string, SourceMark> rules_;
  std::map<std::string, SourceMark> metrics_;
};

// ---------------------------------------------------------------------------------------
// Main file

// One entry of "rule_files", or the default pattern when the key is absent.
struct RulePattern {
  std::string text;
  std::optional<YAML::Mark> mark;
};

struct MainFile {
  Config config;
  std::vector<RulePattern> patterns;
};

// Returns whether `address` is "host:port", ":port" or "[IPv6 address]:port" with a port
// from 1 to 65535.
bool IsValidListenAddress(const std::string& address) {
  std::string host;
  std::string port;
  if (StartsWith(address, "[")) {
    const auto close = address.find(']');
    if (close == std::string::npos || address.compare(close + 1, 1, ":") != 0) return false;
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
    in6_addr parsed{};
    if (inet_pton(AF_INET6, host.c_str(), &parsed) != 1) return false;
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos) return false;
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    const bool host_ok = std::all_of(host.begin(), host.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_';
    });
    if (!host_ok) return false;
  }

  if (port.empty() || port.size() > 5) return false;
  if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  const int number = std::stoi(port);
  return number >= 1 && number <= 65535;
}

void ReadDatabase(const Entries& root, DatabaseConfig& database, const Scope& scope) {
  const Entry* section = FindEntry(root, "database");
  if (section == nullptr || !CheckType(*section, "database", YAML::NodeType::Map, "a map", scope)) {
    return;
  }
  const Entries entries = ReadEntries(section->value, kDatabaseKeys, scope);

  if (const auto dsn = ReadString(entries, "dsn", scope)) {
    database.dsn = *dsn;
    if (IsBlank(*dsn)) {
      scope.Report(FindEntry(entries, "dsn")->Mark(),
                   "\"dsn\" is empty; remove the key to use the PG* environment variables");
    }
  }

  if (const auto file = ReadString(entries, "password_file", scope)) {
    database.password_file = *file;
    if (IsBlank(*file)) {
      scope.Report(FindEntry(entries, "password_file")->Mark(),
                   "\"password_file\" is empty; remove the key to use PGPASSWORD or PGPASSFILE");
    }
  }

  if (const auto text = ReadString(entries, "max_connections", scope)) {
    const bool digits =
        !text->empty() && text->size() <= 9 &&
        std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; });
    const int number = digits ? std::stoi(*text) : 0;
    if (number >= 1 && number <= kMaxConnectionsLimit) {
      database.max_connections = number;
    } else {
      scope.Report(FindEntry(entries, "max_connections")->Mark(),
                   fmt::format("\"max_connections\" must be an integer from 1 to {}, not \"{}\"",
                               kMaxConnectionsLimit, *text));
    }
  }
}

void ReadWeb(const Entries& root, Config& config, const Scope& scope) {
  const Entry* section = FindEntry(root, "web");
  if (section == nullptr || !CheckType(*section, "web", YAML::NodeType::Map, "a map", scope)) {
    return;
  }
  const Entries entries = ReadEntries(section->value, kWebKeys, scope);

  if (const auto address = ReadString(entries, "listen_address", scope)) {
    if (IsValidListenAddress(*address)) {
      config.listen_address = *address;
    } else {
      scope.Report(FindEntry(entries, "listen_address")->Mark(),
                   fmt::format("invalid listen address \"{}\": use host:port, :port or "
                               "[v6]:port with a port from 1 to 65535",
                               *address));
    }
  }
}

void ReadRulePatterns(const Entries& root, MainFile& main, const Scope& scope) {
  const Entry* entry = FindEntry(root, "rule_files");
  if (entry == nullptr) {
    main.patterns.push_back({kDefaultRulePattern, std::nullopt});
  } else if (CheckType(*entry, "rule_files", YAML::NodeType::Sequence, "a list of glob patterns",
                       scope)) {
    for (std::size_t index = 0; index < entry->value.size(); ++index) {
      const YAML::Node item = entry->value[index];
      if (CheckItemType(item, index, *entry, "rule_files", YAML::NodeType::Scalar, "a glob pattern",
                        scope)) {
        main.patterns.push_back({item.Scalar(), item.Mark()});
      }
    }
  }
  for (const auto& pattern : main.patterns) main.config.rule_file_patterns.push_back(pattern.text);
}

void ReadDefaults(const Entries& root, Config& config, const Scope& scope) {
  const Entry* section = FindEntry(root, "defaults");
  if (section == nullptr || !CheckType(*section, "defaults", YAML::NodeType::Map, "a map", scope)) {
    return;
  }
  const Entries entries = ReadEntries(section->value, kDefaultsKeys, scope);
  const Timing timing =
      ReadTiming(entries, Timing{config.default_interval, config.default_timeout}, scope);
  config.default_interval = timing.interval;
  config.default_timeout = timing.timeout;
}

// Reads the main file. Returns std::nullopt after a YAML syntax problem, because the rule
// files it names are then unknown.
std::optional<MainFile> ReadMainFile(const std::string& text, const std::string& path,
                                     ProblemList& problems) {
  const auto root = LoadDocument(text, problems);
  if (!root) return std::nullopt;

  MainFile main;
  main.config.path = path;
  main.config.listen_address = kDefaultListenAddress;
  const Scope scope{problems, ""};
  if (root->IsNull()) {
    ReadRulePatterns(Entries{}, main, scope);
    return main;
  }
  if (!root->IsMap()) {
    scope.Report(root->Mark(),
                 fmt::format("the configuration file must be a map, but {}", DescribeNode(*root)));
    return main;
  }

  DuplicateKeyChecker duplicate_keys;
  duplicate_keys.Check(*root, scope);
  const Entries entries = ReadEntries(*root, kMainFileKeys, scope);
  ReadDatabase(entries, main.config.database, scope);
  ReadWeb(entries, main.config, scope);
  ReadRulePatterns(entries, main, scope);
  ReadDefaults(entries, main.config, scope);
  return main;
}

// ---------------------------------------------------------------------------------------
// Files

// Reads a whole file. On failure returns std::nullopt and sets `error` to the errno text.
std::optional<std::string> ReadFile(const std::string& path, std::string* error) {
  const auto close = [](std::FILE* opened) { std::fclose(opened); };
  const std::unique_ptr<std::FILE, decltype(close)> file(std::fopen(path.c_str(), "rb"), close);
  if (!file) {
    *error = ErrnoText(errno);
    return std::nullopt;
  }
  std::string text;
  std::array<char, 8192> buffer;
  std::size_t count = 0;
  while ((count = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0) {
    text.append(buffer.data(), count);
  }
  // fopen() succeeds on a directory; the first read then fails with EISDIR.
  if (std::ferror(file.get()) != 0) {
    *error = ErrnoText(errno);
    return std::nullopt;
  }
  return text;
}

// A rule file matched by a pattern: `name` is used in messages, marks and HELP text,
// `path` to open it.
struct RuleFile {
  std::string name;
  std::string path;
};

// glob(3) passes no user data to its error callback, so the errors of the call in
// progress on this thread are collected through this pointer.
thread_local std::vector<std::string>* glob_errors = nullptr;

int RecordGlobError(const char* path, int error) {
  // A directory that does not exist only means that nothing matches there.
  if (error == ENOENT || error == ENOTDIR) return 0;
  if (glob_errors != nullptr) {
    glob_errors->push_back(
        fmt::format("could not read directory \"{}\": {}", path, ErrnoText(error)));
  }
  return 0;  // Keep matching in the other directories.
}

// Returns the paths matching `pattern`, sorted bytewise so that the load order does not
// depend on the locale. Directory errors are appended to `errors`.
std::vector<std::string> Glob(const std::string& pattern, std::vector<std::string>& errors) {
  glob_t matches{};
  glob_errors = &errors;
  const int status = glob(pattern.c_str(), GLOB_NOSORT, &RecordGlobError, &matches);
  glob_errors = nullptr;

  std::vector<std::string> paths;
  if (status == 0) paths.assign(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
  if (status == GLOB_NOSPACE) errors.push_back("out of memory while matching");
  globfree(&matches);
  std::sort(paths.begin(), paths.end());
  return paths;
}

// Escapes the glob metacharacters in a literal path.
std::string EscapeGlob(const std::string& path) {
  std::string escaped;
  for (char c : path) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') escaped += '\\';
    escaped += c;
  }
  return escaped;
}

// Returns a path that identifies a file however it was reached, for loading each once.
std::string CanonicalPath(const std::string& path) {
  const auto release = [](char* resolved_path) { std::free(resolved_path); };
  const std::unique_ptr<char, decltype(release)> resolved(realpath(path.c_str(), nullptr), release);
  return resolved ? std::string(resolved.get()) : path;
}

// Expands the rule file patterns of the main file at `main_path`. Relative patterns are
// taken from the main file's directory, and their matches are named relative to it.
std::vector<RuleFile> ExpandRulePatterns(const MainFile& main, const std::string& main_path,
                                         ProblemList& problems) {
  const auto slash = main_path.rfind('/');
  const std::string directory = slash == std::string::npos ? "" : main_path.substr(0, slash + 1);
  const Scope scope{problems, ""};

  std::vector<RuleFile> files;
  std::set<std::string> seen;
  for (const auto& pattern : main.patterns) {
    const bool relative = !StartsWith(pattern.text, "/");
    const std::string prefix = relative ? directory : "";
    const std::string full_pattern = EscapeGlob(prefix) + pattern.text;
    const auto report = [&](const std::string& text) {
      if (pattern.mark) {
        scope.Report(*pattern.mark, text);
      } else {
        problems.AddForFile(text);
      }
    };

    std::vector<std::string> errors;
    const auto paths = Glob(full_pattern, errors);
    for (const auto& error : errors) {
      report(fmt::format("rule file pattern \"{}\": {}", pattern.text, error));
    }
    if (paths.empty() && errors.empty()) {
      const std::string searched =
          prefix.empty() ? "" : fmt::format(" (searched as \"{}{}\")", prefix, pattern.text);
      report(pattern.mark
                 ? fmt::format("rule file pattern \"{}\" matches no file{}", pattern.text, searched)
                 : fmt::format("default rule file pattern \"{}\" matches no file{}; set "
                               "\"rule_files\" to the rule files to load",
                               pattern.text, searched));
    }

    for (const auto& path : paths) {
      if (!seen.insert(CanonicalPath(path)).second) continue;
      files.push_back({path.substr(prefix.size()), path});
    }
  }
  return files;
}

}  // namespace

}  // namespace detail

std::vector<Rule> ParseRuleFile(const std::string& text, const std::string& file_name,
                                const RuleDefaults& defaults) {
  detail::ProblemList problems(file_name);
  std::vector<Rule> rules =
      detail::ReadRuleFile(text, detail::Timing{defaults.interval, defaults.timeout}, problems);
  detail::NameIndex names;
  for (const auto& rule : rules) names.Add(rule, problems);
  if (!problems.empty()) throw ConfigError(problems.InFileOrder());
  return rules;
}

Config LoadConfig(const std::string& path) {
  std::string error;
  const auto text = detail::ReadFile(path, &error);
  if (!text) {
    throw ConfigError({fmt::format("{}: could not read configuration file: {}", path, error)});
  }

  detail::ProblemList main_problems(path);
  auto main = detail::ReadMainFile(*text, path, main_problems);
  if (!main) throw ConfigError(main_problems.InFileOrder());
  const auto files = detail::ExpandRulePatterns(*main, path, main_problems);
  std::vector<std::string> all_problems = main_problems.InFileOrder();

  Config& config = main->config;
  const detail::Timing defaults{config.default_interval, config.default_timeout};
  detail::NameIndex names;
  for (const auto& file : files) {
    detail::ProblemList problems(file.name);
    if (const auto rule_text = detail::ReadFile(file.path, &error)) {
      for (auto& rule : detail::ReadRuleFile(*rule_text, defaults, problems)) {
        names.Add(rule, problems);
        config.rules.push_back(std::move(rule));
      }
    } else {
      problems.AddForFile(fmt::format("could not read rule file: {}", error));
    }
    config.rule_files.push_back(file.name);
    const auto messages = problems.InFileOrder();
    all_problems.insert(all_problems.end(), messages.begin(), messages.end());
  }

  if (!all_problems.empty()) throw ConfigError(std::move(all_problems));
  return std::move(config);
}

}  // namespace koji_exporter
