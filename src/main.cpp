// Entry point: parses flags, loads the configuration and wires the scheduler, registry
// and HTTP server together until SIGINT or SIGTERM.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <pthread.h>

#include "koji_exporter/conninfo.hpp"
#include "koji_exporter/explain.hpp"
#include "koji_exporter/http_server.hpp"
#include "koji_exporter/log.hpp"
#include "koji_exporter/registry.hpp"
#include "koji_exporter/rule_loader.hpp"
#include "koji_exporter/reloader.hpp"
#include "koji_exporter/version.hpp"
#include "koji_exporter/web_config.hpp"

namespace koji_exporter {
namespace {

constexpr const char* kUsage = R"(usage: koji_exporter [flags]

Runs the SQL rules of queries/*.yaml against a Koji PostgreSQL database (normally a read
replica) on their own schedules and serves the results to Prometheus on /metrics.

flags:
  --config.file=PATH            main configuration file (default: koji_exporter.yaml)
  --config.check                validate the configuration and rule files, then exit 0 or 1
  --explain                     print the planner's estimated cost and rows of each rule
                                and its sequential scans of large tables, then exit 0, or
                                1 when a rule cannot be planned; uses EXPLAIN without
                                ANALYZE, so no rule's query is run
  --web.listen-address=ADDR     address to serve on, overriding web.listen_address
                                (host:port, :port or [ipv6]:port; default :19716)
  --web.config.file=PATH        web configuration for TLS and basic auth, in the
                                Prometheus exporter-toolkit format (default: none)
  --web.max-threads=N           HTTP worker threads; each keep-alive scraper holds one
                                (default 16)
  --log.level=LEVEL             debug, info, warn or error (default info)
  --log.format=FORMAT           logfmt or json (default logfmt)
  --version                     print the version and exit
  --help                        print this text and exit

SIGHUP or POST /-/reload reloads the main file and the rule files; a bad file is
reported and the running configuration stays. The web configuration is read only at
startup. SIGINT or SIGTERM stops the exporter.

The database is database.dsn in the main file; without it the standard libpq variables
(PGHOST, PGDATABASE, PGSERVICE, ...) are used. The password comes from
database.password_file, PGPASSWORD or PGPASSFILE.
)";

struct Flags {
  std::string config_file = "koji_exporter.yaml";
  bool config_check = false;
  bool explain = false;
  std::string listen_address;
  std::string web_config_file;
  int max_threads = 16;
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kLogfmt;
};

// Exit codes: 0 success, 1 unusable configuration, startup failure, a rule that --explain
// cannot plan or a second stop signal, 2 bad flags.
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

[[noreturn]] void FailUsage(const std::string& message) {
  std::cerr << "koji_exporter: " << message << "\nrun koji_exporter --help for the flags\n";
  std::exit(kExitUsage);
}

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (const auto equals = arg.find('='); equals != std::string::npos) {
      value = arg.substr(equals + 1);
      arg = arg.substr(0, equals);
      has_value = true;
    }
    auto take_value = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) FailUsage(fmt::format("flag {} needs a value", arg));
      return argv[++i];
    };

    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else if (arg == "--version") {
      std::cout << "koji_exporter " << Version() << " (revision " << Revision() << ")\n";
      std::exit(0);
    } else if (arg == "--config.check") {
      flags.config_check = true;
    } else if (arg == "--explain") {
      flags.explain = true;
    } else if (arg == "--config.file") {
      flags.config_file = take_value();
    } else if (arg == "--web.listen-address") {
      flags.listen_address = take_value();
    } else if (arg == "--web.config.file") {
      flags.web_config_file = take_value();
    } else if (arg == "--web.max-threads") {
      const std::string text = take_value();
      char* end = nullptr;
      const long threads = std::strtol(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || threads < 2 || threads > 1024) {
        FailUsage(fmt::format("invalid --web.max-threads \"{}\": use a number from 2 to 1024",
                              text));
      }
      flags.max_threads = static_cast<int>(threads);
    } else if (arg == "--log.level") {
      const std::string text = take_value();
      if (!ParseLogLevel(text, &flags.log_level)) {
        FailUsage(fmt::format("invalid --log.level \"{}\": use debug, info, warn or error", text));
      }
    } else if (arg == "--log.format") {
      const std::string text = take_value();
      if (!ParseLogFormat(text, &flags.log_format)) {
        FailUsage(fmt::format("invalid --log.format \"{}\": use logfmt or json", text));
      }
    } else {
      FailUsage(fmt::format("unknown flag \"{}\"", argv[i]));
    }
  }
  if (flags.config_check && flags.explain) FailUsage("use --config.check or --explain, not both");
  return flags;
}

std::size_t CountMetrics(const Config& config) {
  std::size_t count = 0;
  for (const auto& rule : config.rules) count += rule.metrics.size();
  return count;
}

bool LibpqEnvironmentNamesDatabase() {
  for (const char* name : {"PGHOST", "PGHOSTADDR", "PGDATABASE", "PGSERVICE"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

// Blocks the stop signals in every thread started afterwards, so only sigwait() in
// main() receives them. Also ignores SIGPIPE: a write to a socket that the peer or an
// interrupted query closed must fail with EPIPE, not end the process.
sigset_t BlockStopSignals() {
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

const char* SignalName(int signal) {
  switch (signal) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    default:
      return "SIGHUP";
  }
}

// Waits for SIGINT or SIGTERM and returns it; calls `on_hangup` for each SIGHUP meanwhile.
int WaitForStopSignal(const sigset_t& signals, const std::function<void()>& on_hangup) {
  while (true) {
    int signal = 0;
    sigwait(&signals, &signal);
    if (signal == SIGHUP) {
      on_hangup();
      continue;
    }
    return signal;
  }
}

// Watches for a second stop signal while the first one's shutdown runs, and then exits at
// once, as operators expect from a second Ctrl-C.
void ExitOnSecondStopSignal(const sigset_t& signals, const Logger& logger) {
  std::thread([signals, logger] {
    const int signal = WaitForStopSignal(signals, [&logger] {
      logger.Warn("SIGHUP ignored: the exporter is stopping");
    });
    logger.Warn("second stop signal, exiting at once", {{"signal", SignalName(signal)}});
    std::_Exit(kExitFailure);
  }).detach();
}

// Loads --web.config.file if given; an empty WebConfig means plain HTTP without passwords.
// Prints the problems and returns std::nullopt when the file cannot be used.
std::optional<WebConfig> LoadWebConfigFlag(const Flags& flags) {
  if (flags.web_config_file.empty()) return WebConfig{};
  try {
    return LoadWebConfig(flags.web_config_file);
  } catch (const ConfigError& error) {
    for (const auto& problem : error.problems()) std::cerr << problem << '\n';
    std::cerr << fmt::format("koji_exporter: web configuration \"{}\" has {} problem(s)\n",
                             flags.web_config_file, error.problems().size());
    return std::nullopt;
  }
}

std::string DescribeWebConfig(const WebConfig& web) {
  return fmt::format("{}, {} basic auth user(s)", web.UsesTls() ? "TLS" : "no TLS",
                     web.basic_auth_users.size());
}

int Run(const Flags& flags) {
  const Logger logger(flags.log_level, flags.log_format);

  Config config;
  try {
    config = LoadConfig(flags.config_file);
  } catch (const ConfigError& error) {
    for (const auto& problem : error.problems()) std::cerr << problem << '\n';
    std::cerr << fmt::format("koji_exporter: configuration \"{}\" has {} problem(s)\n",
                             flags.config_file, error.problems().size());
    return kExitFailure;
  }
  // The DSN and the password file are checked with the rest of the configuration, so
  // --config.check catches them too.
  std::string conninfo;
  try {
    const std::string password = config.database.password_file.empty()
                                     ? ""
                                     : ReadPasswordFile(config.database.password_file);
    conninfo = BuildConninfo(config.database.dsn, password);
  } catch (const std::exception& error) {
    std::cerr << fmt::format("{}: database: {}\n", flags.config_file, error.what());
    std::cerr << fmt::format("koji_exporter: configuration \"{}\" has 1 problem(s)\n",
                             flags.config_file);
    return kExitFailure;
  }

  const std::optional<WebConfig> web = LoadWebConfigFlag(flags);
  if (!web) return kExitFailure;
  if (web->UsesTls()) {
    // Loaded here as well as at startup, so --config.check catches a bad renewal.
    const std::string problem = TlsLoadProblem(web->tls_cert_file, web->tls_key_file);
    if (!problem.empty()) {
      std::cerr << fmt::format("{}: {}\n", flags.web_config_file, problem);
      std::cerr << fmt::format("koji_exporter: web configuration \"{}\" has 1 problem(s)\n",
                               flags.web_config_file);
      return kExitFailure;
    }
  }

  if (flags.config_check) {
    std::cout << fmt::format("{}: ok ({} rule files, {} rules, {} metrics)\n", flags.config_file,
                             config.rule_files.size(), config.rules.size(), CountMetrics(config));
    if (!flags.web_config_file.empty()) {
      std::cout << fmt::format("{}: ok ({})\n", flags.web_config_file, DescribeWebConfig(*web));
    }
    return 0;
  }
  if (config.database.dsn.empty() && !LibpqEnvironmentNamesDatabase()) {
    logger.Error("no database configured",
                 {{"config", flags.config_file},
                  {"hint", "set database.dsn in the main file or PGHOST/PGDATABASE; "
                           "scripts/run.sh starts a demo database when none is configured"}});
    return kExitFailure;
  }
  if (flags.explain) return ExplainRules(config, conninfo, std::cout, std::cerr);

  const sigset_t stop_signals = BlockStopSignals();

  Registry registry(config.rules, Version(), Revision(), logger);
  Reloader reloader(flags.config_file, config, conninfo, registry, logger);

  HttpServerOptions http_options;
  http_options.listen_address =
      flags.listen_address.empty() ? config.listen_address : flags.listen_address;
  http_options.worker_threads = flags.max_threads;
  http_options.version_text = fmt::format("Version {}, revision {}.", Version(), Revision());
  http_options.tls_cert_file = web->tls_cert_file;
  http_options.tls_key_file = web->tls_key_file;
  if (!web->basic_auth_users.empty()) {
    auto basic_auth = std::make_shared<const BasicAuth>(web->basic_auth_users);
    http_options.authorize = [basic_auth](const std::string& authorization) {
      return basic_auth->Check(authorization);
    };
  }
  HttpServer http(
      http_options, [&registry] { return registry.Current(); },
      [&reloader] { return reloader.Healthy(); }, logger);
  http.SetReloadHandler([&reloader] { return reloader.Reload(); });
  try {
    http.Bind();
  } catch (const ListenError& error) {
    logger.Error("cannot start HTTP server", {{"err", error.what()}});
    return kExitFailure;
  }

  logger.Info("starting koji_exporter", {{"version", Version()}, {"revision", Revision()}});
  logger.Info("configuration loaded",
              {{"config", flags.config_file},
               {"rule_files", std::to_string(config.rule_files.size())},
               {"rules", std::to_string(config.rules.size())},
               {"metrics", std::to_string(CountMetrics(config))},
               {"database", RedactConninfo(config.database.dsn)},
               {"max_connections", std::to_string(config.database.max_connections)}});
  for (const auto& rule : config.rules) {
    logger.Info("rule scheduled", {{"rule", rule.name},
                                   {"file", rule.mark.file},
                                   {"interval_seconds", fmt::format("{:g}", rule.interval.count() / 1000.0)},
                                   {"timeout_seconds", fmt::format("{:g}", rule.timeout.count() / 1000.0)}});
  }

  reloader.Start();
  http.Start();
  logger.Info("listening", {{"address", http_options.listen_address},
                            {"port", std::to_string(http.port())},
                            {"tls", web->UsesTls() ? "true" : "false"},
                            {"basic_auth_users", std::to_string(web->basic_auth_users.size())}});

  const int signal = WaitForStopSignal(stop_signals, [&] {
    logger.Info("configuration reload requested", {{"signal", "SIGHUP"}});
    reloader.Reload();
  });
  logger.Info("stopping", {{"signal", SignalName(signal)}});
  ExitOnSecondStopSignal(stop_signals, logger);
  http.Stop();
  reloader.Stop();
  logger.Info("stopped");
  return 0;
}

}  // namespace
}  // namespace koji_exporter

int main(int argc, char** argv) {
  const koji_exporter::Flags flags = koji_exporter::ParseFlags(argc, argv);
  return koji_exporter::Run(flags);
}
