// Runs the koji_exporter binary as a child process for end-to-end tests: writes its
// configuration, captures its log, finds its port and stops it with a signal.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace koji_exporter::testing {

/// Result of a command that ran to completion.
struct CommandResult {
  int exit_code = -1;
  std::string output;  // standard output and standard error, interleaved
};

/// Starts `binary` with `arguments`, its standard output and error going to `log_path`,
/// and returns its process id. The child gets SIGKILL when the test process dies, so an
/// aborted test leaves no server behind.
pid_t SpawnWithLog(const std::string& binary, const std::vector<std::string>& arguments,
                   const std::string& log_path);

/// Runs the exporter binary with `arguments` to completion (e.g. --config.check).
CommandResult RunExporter(const std::vector<std::string>& arguments);

/// A temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  /// Writes `text` to `relative` inside the directory and returns the full path.
  std::string Write(const std::string& relative, const std::string& text) const;

 private:
  std::string path_;
};

/// How Get() and Post() reach the exporter: plain HTTP without credentials by default.
struct ClientOptions {
  /// HTTPS without certificate verification, for the tests' self-signed certificates.
  bool https = false;
  /// Basic auth credentials; none are sent while `user` is empty.
  std::string user;
  std::string password;
};

/// A running exporter listening on an ephemeral port of 127.0.0.1.
class ExporterProcess {
 public:
  /// Starts the binary with --config.file=`config_file` and waits (bounded) for the
  /// "listening" log line. Throws std::runtime_error with the log if it does not come.
  explicit ExporterProcess(const std::string& config_file,
                           const std::vector<std::string>& extra_arguments = {});
  /// Kills the process if it is still running.
  ~ExporterProcess();
  ExporterProcess(const ExporterProcess&) = delete;
  ExporterProcess& operator=(const ExporterProcess&) = delete;

  int port() const { return port_; }
  /// Sets how later Get() and Post() calls connect.
  void SetClientOptions(ClientOptions options) { client_options_ = std::move(options); }
  pid_t pid() const { return pid_; }
  /// POSTs an empty body to `path` and returns the response body; "" with status 0 when
  /// the request failed.
  std::string Post(const std::string& path, int* status = nullptr) const;
  /// Sends `signal` without waiting for anything.
  void Signal(int signal) const;
  /// GETs `path` and returns the body; "" with status 0 when the request failed.
  std::string Get(const std::string& path, int* status = nullptr) const;
  /// GETs /metrics up to `attempts` times, 100 ms apart, until `needle` appears; returns
  /// the last body.
  std::string WaitForMetric(const std::string& needle, int attempts = 100) const;
  /// Sends `signal` and waits (bounded) for the exit; returns the exit code, or -1.
  int Stop(int signal);
  /// Everything the process logged so far.
  std::string Log() const;
  /// Waits (at most 10 s) until the process holds an accepted TCP connection on its port,
  /// that is one that left the kernel's listen queue; returns whether it does.
  bool WaitForAcceptedConnection() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  int port_ = 0;
  ClientOptions client_options_;
};

}  // namespace koji_exporter::testing
