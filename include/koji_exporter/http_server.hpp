// Serves /metrics, /healthz and a landing page over HTTP with cpp-httplib. It deals with HTTP,
// not SQL or rules: it only copies the registry's latest snapshot.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "koji_exporter/log.hpp"
#include "koji_exporter/registry.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace koji_exporter {

class ConnectionPool;

/// Default TCP port, chosen outside the 9100-9999 block that the Prometheus project's
/// list of default exporter ports filled first.
inline constexpr int kDefaultPort = 19716;

/// Host and port of a listen address.
struct ListenAddress {
  std::string host;
  int port = 0;
};

/// Parses "host:port", ":port" (every address) or "[v6 address]:port"; port 0 lets the
/// kernel pick a free port. Returns false for anything else.
bool ParseListenAddress(const std::string& text, ListenAddress* address);

struct HttpServerOptions {
  std::string listen_address = ":19716";
  /// Threads serving requests. Each open keep-alive connection occupies one while it is
  /// open, so this must exceed the number of scrapers to keep /healthz answering.
  int worker_threads = 16;
  /// Time an idle keep-alive connection may occupy its thread.
  std::chrono::seconds keep_alive_timeout{5};
  /// Limits on each single read or write of a request or response.
  std::chrono::seconds read_timeout{10};
  std::chrono::seconds write_timeout{10};
  /// Maximum time one connection may stay open, so a client that sends or reads one
  /// byte at a time cannot hold a thread for long.
  std::chrono::milliseconds connection_deadline{std::chrono::seconds(60)};
  /// Time the responses in flight get to finish when the server stops; connections
  /// still open then are closed.
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(5)};
  /// Text shown on the landing page, e.g. "koji_exporter 0.1.0 (revision abc)".
  std::string version_text;
  /// PEM certificate and private key files; when both are set, the server speaks HTTPS only.
  std::string tls_cert_file;
  std::string tls_key_file;
  /// Called with the Authorization header value ("" when absent) of every request; when
  /// set, a request it rejects gets 401 with a Basic challenge. Must be thread-safe.
  std::function<bool(const std::string& authorization)> authorize;
};

/// Raised when the server cannot listen: invalid address, port already in use, or a TLS
/// certificate or key that cannot be loaded.
class ListenError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The HTTP side of the exporter. /metrics returns the snapshot as it is (gzip when the
/// client accepts it, never brotli); /healthz returns 200 while `healthy()` is true, else
/// 503; POST /-/reload reloads the configuration when a reload handler is set.
class HttpServer {
 public:
  using SnapshotSource = std::function<std::shared_ptr<const Snapshot>()>;
  using HealthCheck = std::function<bool()>;
  /// Reloads the configuration; returns "" on success or the problems, one per line.
  using ReloadHandler = std::function<std::string()>;

  HttpServer(HttpServerOptions options, SnapshotSource snapshot, HealthCheck healthy,
             Logger logger);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds the listen socket without sharing the port (no SO_REUSEPORT), so a second
  /// instance on the same port fails here. Throws ListenError, also when the TLS
  /// certificate or key could not be loaded.
  void Bind();
  /// Port actually bound; valid after Bind().
  int port() const { return port_; }
  /// Enables POST /-/reload, which calls `reload`; call before Start().
  void SetReloadHandler(ReloadHandler reload) { reload_ = std::move(reload); }
  /// Serves on a background thread until Stop().
  void Start();
  /// Stops accepting, lets the responses in flight finish within the shutdown grace,
  /// and joins the serving thread.
  void Stop();

 private:
  void Route();
  void HandleReload(const httplib::Request& request, httplib::Response& response);

  HttpServerOptions options_;
  SnapshotSource snapshot_;
  HealthCheck healthy_;
  ReloadHandler reload_;
  Logger logger_;
  std::unique_ptr<httplib::Server> server_;
  // The worker pool of the running server, which tracks each connection's deadlines.
  std::atomic<ConnectionPool*> pool_{nullptr};
  std::thread thread_;
  int port_ = 0;
};

/// Loads a TLS certificate and key as the HTTPS server would, and returns "" when both load
/// and match, else the problem.
std::string TlsLoadProblem(const std::string& cert_file, const std::string& key_file);

/// Returns whether an Accept-Encoding header value accepts gzip (a `gzip` or `*` coding
/// with a non-zero q value).
bool AcceptsGzip(const std::string& accept_encoding);

}  // namespace koji_exporter
