// Runs Debian's Prometheus server as a child process for end-to-end tests: writes a
// configuration that scrapes one target and evaluates rule files every second, and reads
// the results through Prometheus' HTTP API. Knows nothing of Koji or of the exporter.
// Also declares the JSON readers that the end-to-end tests share.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "db/exporter_process.hpp"

namespace koji_exporter::testing {

// JSON documents are read with YAML::Load, because JSON is a subset of YAML 1.2. yaml-cpp
// keeps every scalar as text, and YAML::Node::as<std::string>() also converts numbers,
// booleans and null. JsonString() accepts only quoted scalars, which are the JSON strings.
// NOTE: yaml-cpp 0.7 rejects the \u escapes of a UTF-16 surrogate pair, which JSON uses
// for characters beyond U+FFFF. Prometheus and the dashboards write such characters as
// UTF-8 instead.

/// Returns the member `key` of the JSON object `object`. Throws std::runtime_error when
/// `object` is not an object or has no such member.
YAML::Node JsonMember(const YAML::Node& object, const std::string& key);
/// Returns the value of the JSON string `node`. Throws std::runtime_error when `node` is a
/// number, boolean, null, array or object.
std::string JsonString(const YAML::Node& node);
/// Returns the value of the string member `key` of the JSON object `object`, or `fallback`
/// when there is no such member. Throws std::runtime_error when `object` is not an object
/// or the member is not a string.
std::string JsonStringOr(const YAML::Node& object, const std::string& key,
                         const std::string& fallback);

/// What one Prometheus server scrapes and evaluates.
struct PrometheusOptions {
  /// host:port of the only scrape target.
  std::string target;
  /// `job` label of the scrape job.
  std::string job = "koji";
  /// Absolute paths of alerting and recording rule files.
  std::vector<std::string> rule_files;
};

/// One element of a query result: a series of an instant vector, or a scalar (no labels).
struct Sample {
  std::map<std::string, std::string> labels;
  double value = 0;
};

/// Outcome of one instant query.
struct QueryResult {
  /// Prometheus' error message, or why the request failed; empty on success.
  std::string error;
  std::vector<Sample> samples;
};

/// An active alert as /api/v1/alerts lists it.
struct Alert {
  /// The alert's labels, `alertname` included.
  std::map<std::string, std::string> labels;
  /// "pending" or "firing".
  std::string state;
};

/// A Prometheus server on 127.0.0.1, on the first free port of 19900-19909, with its
/// configuration and storage in a temporary directory that is removed afterwards.
/// Scrapes and rule evaluations happen every second.
class PrometheusProcess {
 public:
  /// Starts /usr/bin/prometheus and waits (bounded) until it reports ready. Throws
  /// std::runtime_error with the server's log when it does not start, or when every port
  /// of the range is taken.
  explicit PrometheusProcess(const PrometheusOptions& options);
  /// Stops the server with SIGTERM, or SIGKILL when it does not exit within 10 s.
  ~PrometheusProcess();
  PrometheusProcess(const PrometheusProcess&) = delete;
  PrometheusProcess& operator=(const PrometheusProcess&) = delete;

  int port() const { return port_; }
  /// Runs `expression` through /api/v1/query at the current time. Never throws: a failed
  /// request or a query error is returned in QueryResult::error.
  QueryResult Query(const std::string& expression) const;
  /// Returns the pending and firing alerts of /api/v1/alerts. Throws std::runtime_error
  /// when the request fails or the response is not what the API documents.
  std::vector<Alert> Alerts() const;
  /// Returns everything the server has logged so far.
  std::string Log() const;

 private:
  /// Starts the server on `port`. Returns false when the port turned out to be taken.
  bool TryStart(int port);
  /// Returns whether the server on `port_` is this one and /-/ready returns 200.
  bool IsReady() const;
  void Kill();

  TempDir directory_;
  std::string config_path_;
  std::string storage_path_;
  std::string log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace koji_exporter::testing
