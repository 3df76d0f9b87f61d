// Child-process plumbing and an HTTP API client for a throwaway Prometheus server.
#include "db/prometheus_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace koji_exporter::testing {
namespace {

constexpr const char* kPrometheusBinary = "/usr/bin/prometheus";
constexpr int kFirstPort = 19900;
constexpr int kLastPort = 19909;
// Startup waits up to kStartAttempts * kStartPause.
constexpr int kStartAttempts = 300;
constexpr auto kStartPause = std::chrono::milliseconds(100);

std::string ReadAll(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Returns whether nothing listens on 127.0.0.1:`port` right now. Prometheus may still lose
// the port to another process before it binds, which TryStart() notices from its log.
bool PortIsFree(int port) {
  const int socket_fd = socket(AF_INET, SOCK_STREAM, 0);
  if (socket_fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool free = bind(socket_fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(socket_fd);
  return free;
}

// Returns whether the child exited, reaping it if so.
bool HasExited(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, WNOHANG) == pid;
}

// Waits up to `limit` for the child to exit; returns whether it did.
bool WaitForExit(pid_t pid, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (HasExited(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Returns `text` as a double-quoted YAML scalar.
std::string Quoted(const std::string& text) {
  YAML::Emitter scalar;
  scalar << YAML::DoubleQuoted << text;
  return scalar.c_str();
}

std::string ConfigText(const PrometheusOptions& options) {
  std::string rule_files;
  for (const auto& file : options.rule_files) rule_files += fmt::format("  - {}\n", Quoted(file));
  return fmt::format(R"(global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
{}scrape_configs:
  - job_name: {}
    static_configs:
      - targets: [{}]
)",
                     rule_files.empty() ? "  []\n" : rule_files, Quoted(options.job),
                     Quoted(options.target));
}

httplib::Client MakeClient(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  client.set_read_timeout(10);
  return client;
}

// Returns the parsed `text`, or a null node when it is not JSON.
YAML::Node LoadOrNull(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException&) {
    return {};
  }
}

// Parses an API response body and returns its "data" member. Sets `error` instead when the
// request failed or Prometheus reported an error. Throws std::runtime_error when a member
// that the API documents as a string is not one.
YAML::Node ParseApiResponse(const httplib::Result& response, std::string& error) {
  if (!response) {
    error = "request failed: " + httplib::to_string(response.error());
    return {};
  }
  const YAML::Node body = LoadOrNull(response->body);
  if (!body.IsMap()) {
    error =
        fmt::format("HTTP {}: response is not a JSON object: {}", response->status, response->body);
    return {};
  }
  if (JsonStringOr(body, "status", "") != "success") {
    error = fmt::format("HTTP {}: {}: {}", response->status, JsonStringOr(body, "errorType", ""),
                        JsonStringOr(body, "error", response->body));
    return {};
  }
  const YAML::Node data = body["data"];
  return data ? data : YAML::Node();
}

// Converts a [timestamp, "value"] pair of the API; the value may be "NaN" or "+Inf".
double SampleValue(const YAML::Node& pair) {
  if (!pair.IsSequence() || pair.size() < 2) {
    throw std::runtime_error("a sample is not a [timestamp, value] pair");
  }
  return std::stod(JsonString(pair[1]));
}

std::map<std::string, std::string> Labels(const YAML::Node& object) {
  if (!object.IsMap()) throw std::runtime_error("labels are not a JSON object");
  std::map<std::string, std::string> labels;
  for (const auto& label : object) labels[JsonString(label.first)] = JsonString(label.second);
  return labels;
}

}  // namespace

YAML::Node JsonMember(const YAML::Node& object, const std::string& key) {
  if (!object.IsMap()) {
    throw std::runtime_error(fmt::format("no member \"{}\": not a JSON object", key));
  }
  const YAML::Node member = object[key];
  if (!member) throw std::runtime_error(fmt::format("no member \"{}\"", key));
  return member;
}

std::string JsonString(const YAML::Node& node) {
  // YAML::Load tags quoted scalars "!" and plain ones, such as numbers and true, "?".
  if (!node.IsScalar() || node.Tag() != "!") {
    throw std::runtime_error("expected a JSON string, found " + YAML::Dump(node));
  }
  return node.Scalar();
}

std::string JsonStringOr(const YAML::Node& object, const std::string& key,
                         const std::string& fallback) {
  if (!object.IsMap()) {
    throw std::runtime_error(fmt::format("no member \"{}\": not a JSON object", key));
  }
  const YAML::Node member = object[key];
  return member ? JsonString(member) : fallback;
}

PrometheusProcess::PrometheusProcess(const PrometheusOptions& options) {
  if (!std::filesystem::exists(kPrometheusBinary)) {
    throw std::runtime_error(fmt::format(
        "{} not found: install the Debian package prometheus (scripts/install-deps.sh does)",
        kPrometheusBinary));
  }
  config_path_ = directory_.Write("prometheus.yml", ConfigText(options));
  storage_path_ = directory_.path() + "/data";
  log_path_ = directory_.path() + "/prometheus.log";

  for (int port = kFirstPort; port <= kLastPort; ++port) {
    if (PortIsFree(port) && TryStart(port)) return;
  }
  throw std::runtime_error(fmt::format(
      "every port from {} to {} is taken; stop the servers that hold them", kFirstPort, kLastPort));
}

PrometheusProcess::~PrometheusProcess() { Kill(); }

bool PrometheusProcess::TryStart(int port) {
  port_ = port;
  pid_ = SpawnWithLog(kPrometheusBinary,
                      {"--config.file=" + config_path_, "--storage.tsdb.path=" + storage_path_,
                       fmt::format("--web.listen-address=127.0.0.1:{}", port)},
                      log_path_);

  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    if (HasExited(pid_)) {
      pid_ = -1;
      const std::string log = Log();
      if (log.find("address already in use") != std::string::npos) return false;
      throw std::runtime_error("prometheus exited before it was ready:\n" + log);
    }
    if (IsReady()) return true;
    std::this_thread::sleep_for(kStartPause);
  }
  Kill();
  throw std::runtime_error(fmt::format("prometheus did not become ready within {} s:\n{}",
                                       kStartAttempts * kStartPause.count() / 1000, Log()));
}

bool PrometheusProcess::IsReady() const {
  httplib::Client client = MakeClient(port_);
  const auto ready = client.Get("/-/ready");
  if (!ready || ready->status != 200) return false;

  // Another test's server may hold the port while this one failed to bind, so compare the
  // storage path to be sure that the response came from this server.
  std::string error;
  const YAML::Node flags = ParseApiResponse(client.Get("/api/v1/status/flags"), error);
  return error.empty() && JsonStringOr(flags, "storage.tsdb.path", "") == storage_path_;
}

void PrometheusProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  if (!WaitForExit(pid_, std::chrono::seconds(10))) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
}

QueryResult PrometheusProcess::Query(const std::string& expression) const {
  httplib::Client client = MakeClient(port_);
  const httplib::Params form = {{"query", expression}};
  QueryResult result;
  try {
    const YAML::Node data = ParseApiResponse(client.Post("/api/v1/query", form), result.error);
    if (!result.error.empty()) return result;

    const std::string type = JsonString(JsonMember(data, "resultType"));
    if (type == "scalar") {
      result.samples.push_back({{}, SampleValue(JsonMember(data, "result"))});
    } else if (type == "vector") {
      for (const auto& series : JsonMember(data, "result")) {
        result.samples.push_back(
            {Labels(JsonMember(series, "metric")), SampleValue(JsonMember(series, "value"))});
      }
    } else {
      result.error = fmt::format("unexpected result type \"{}\"", type);
    }
  } catch (const std::exception& error) {
    result.samples.clear();
    result.error = fmt::format("unexpected response: {}", error.what());
  }
  return result;
}

std::vector<Alert> PrometheusProcess::Alerts() const {
  httplib::Client client = MakeClient(port_);
  std::string error;
  std::vector<Alert> alerts;
  try {
    const YAML::Node data = ParseApiResponse(client.Get("/api/v1/alerts"), error);
    if (error.empty()) {
      for (const auto& alert : JsonMember(data, "alerts")) {
        alerts.push_back(
            {Labels(JsonMember(alert, "labels")), JsonString(JsonMember(alert, "state"))});
      }
    }
  } catch (const std::runtime_error& unexpected) {
    error = fmt::format("unexpected response: {}", unexpected.what());
  }
  if (!error.empty()) throw std::runtime_error("GET /api/v1/alerts: " + error);
  return alerts;
}

std::string PrometheusProcess::Log() const { return ReadAll(log_path_); }

}  // namespace koji_exporter::testing
