// Wires cpp-httplib 0.11 to the snapshot: routes, worker pool, socket options.
#include "koji_exporter/http_server.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdlib>

#include "connection_pool.hpp"
#include "koji_exporter/exposition.hpp"

namespace koji_exporter {
namespace {

std::string Trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  const auto end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

std::string Lowercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Replaces cpp-httplib's defaults, which set SO_REUSEPORT and so let a second exporter
// share the port silently. SO_REUSEADDR alone still allows a quick restart. An IPv6
// socket also accepts IPv4, so ":port" covers both families.
void SetSocketOptions(int socket) {
  int yes = 1;
  setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  int no = 0;
  setsockopt(socket, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof no);
}

// Sends `body` through a content provider of known length: cpp-httplib 0.11 compresses
// plain bodies on its own, and picks brotli whenever the client lists it, which costs far
// more CPU than gzip. Provider bodies are sent as they are.
void SendPrepared(httplib::Response& response, std::shared_ptr<const Snapshot> snapshot,
                  const std::string* body) {
  response.set_content_provider(
      body->size(), kExpositionContentType,
      [snapshot, body](size_t offset, size_t length, httplib::DataSink& sink) {
        sink.write(body->data() + offset, length);
        return true;
      });
}

constexpr const char* kReloadPath = "/-/reload";

// Real scrapers send fewer than ten headers.
constexpr std::size_t kMaxRequestHeaders = 64;

// Largest request body accepted. Only the reload endpoint takes POST, and it needs no body.
constexpr std::size_t kMaxRequestBodyBytes = 64 * 1024;

// Headers that cpp-httplib adds to every request itself, with the peer's and its own
// address; they do not count against kMaxRequestHeaders.
constexpr std::array<const char*, 4> kAddedHeaders = {"REMOTE_ADDR", "REMOTE_PORT", "LOCAL_ADDR",
                                                      "LOCAL_PORT"};

std::size_t ClientHeaderCount(const httplib::Request& request) {
  std::size_t added = 0;
  for (const char* name : kAddedHeaders) added += request.headers.count(name);
  return request.headers.size() - added;
}

const char* kLandingPage = R"(<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>koji_exporter</title></head>
<body>
<h1>koji_exporter</h1>
<p>Prometheus exporter for the Koji build system. {}</p>
<ul>
<li><a href="metrics">/metrics</a>: Koji metrics and the exporter's own metrics</li>
<li><a href="healthz">/healthz</a>: liveness of the HTTP server and the rule scheduler</li>
</ul>
</body>
</html>
)";

std::string TlsProblemText(const std::string& cert_file, const std::string& key_file) {
  return fmt::format(
      "could not load TLS certificate \"{}\" and key \"{}\": both must be PEM files and the "
      "key must match the certificate",
      cert_file, key_file);
}

// Creates an HTTPS server when a certificate is configured. Whether the files loaded is
// checked in Bind(), where a failure can be reported as a ListenError.
std::unique_ptr<httplib::Server> MakeServer(const HttpServerOptions& options) {
  if (options.tls_cert_file.empty()) return std::make_unique<httplib::Server>();
  return std::make_unique<httplib::SSLServer>(options.tls_cert_file.c_str(),
                                              options.tls_key_file.c_str());
}

std::string EscapeHtml(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

bool ParseListenAddress(const std::string& text, ListenAddress* address) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const int port = std::atoi(port_text.c_str());
  if (port > 65535) return false;

  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return false;  // an IPv6 address needs brackets
  }
  address->host = host.empty() ? "::" : host;
  address->port = port;
  return true;
}

bool AcceptsGzip(const std::string& accept_encoding) {
  std::size_t start = 0;
  while (start <= accept_encoding.size()) {
    auto end = accept_encoding.find(',', start);
    if (end == std::string::npos) end = accept_encoding.size();
    const std::string item = accept_encoding.substr(start, end - start);
    start = end + 1;

    const auto semicolon = item.find(';');
    const std::string coding = Lowercase(Trim(item.substr(0, semicolon)));
    if (coding != "gzip" && coding != "*") continue;
    if (semicolon == std::string::npos) return true;

    const std::string parameter = Lowercase(Trim(item.substr(semicolon + 1)));
    if (parameter.rfind("q=", 0) != 0) return true;
    if (std::strtod(parameter.c_str() + 2, nullptr) > 0) return true;
  }
  return false;
}

std::string TlsLoadProblem(const std::string& cert_file, const std::string& key_file) {
  const httplib::SSLServer server(cert_file.c_str(), key_file.c_str());
  return server.is_valid() ? "" : TlsProblemText(cert_file, key_file);
}

HttpServer::HttpServer(HttpServerOptions options, SnapshotSource snapshot, HealthCheck healthy,
                       Logger logger)
    : options_(std::move(options)),
      snapshot_(std::move(snapshot)),
      healthy_(std::move(healthy)),
      logger_(std::move(logger)),
      server_(MakeServer(options_)) {
  ConnectionLimits limits;
  limits.threads = static_cast<std::size_t>(std::max(2, options_.worker_threads));
  limits.connection_deadline = options_.connection_deadline;
  limits.shutdown_grace = options_.shutdown_grace;
  limits.tls = !options_.tls_cert_file.empty();
  limits.read_timeout = options_.read_timeout;
  // A request may first wait for the keep-alive timeout and then take the read timeout.
  limits.request_deadline = options_.keep_alive_timeout + options_.read_timeout;
  // Called when serving starts, after Bind() has set the port.
  server_->new_task_queue = [this, limits] {
    auto* pool = new ConnectionPool(port_, limits, logger_);
    pool_ = pool;
    return pool;
  };
  // Called after each response is written.
  server_->set_logger([this](const httplib::Request& request, const httplib::Response&) {
    if (ConnectionPool* pool = pool_.load()) {
      pool->RequestFinished(request.remote_addr, request.remote_port);
    }
  });
  server_->set_socket_options(SetSocketOptions);
  server_->set_keep_alive_timeout(options_.keep_alive_timeout.count());
  server_->set_read_timeout(options_.read_timeout);
  server_->set_write_timeout(options_.write_timeout);
  server_->set_payload_max_length(kMaxRequestBodyBytes);
  Route();
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Route() {
  // Runs before routing, for every method: the read-only endpoints take GET and HEAD
  // only, the reload endpoint POST only, and a request with very many headers is turned
  // away before any handler. Credentials are checked before the method, so a client
  // without them learns nothing about the endpoints.
  server_->set_pre_routing_handler(
      [this](const httplib::Request& request, httplib::Response& response) {
        if (ConnectionPool* pool = pool_.load()) {
          pool->RequestStarted(request.remote_addr, request.remote_port);
        }
        if (ClientHeaderCount(request) > kMaxRequestHeaders) {
          response.status = 431;
          response.set_content(
              fmt::format("too many request headers: at most {}\n", kMaxRequestHeaders),
              "text/plain; charset=utf-8");
          return httplib::Server::HandlerResponse::Handled;
        }
        if (options_.authorize && !options_.authorize(request.get_header_value("Authorization"))) {
          response.status = 401;
          response.set_header("WWW-Authenticate", R"(Basic realm="koji_exporter")");
          response.set_content("unauthorized: this exporter requires HTTP basic auth\n",
                               "text/plain; charset=utf-8");
          logger_.Debug("request unauthorized",
                        {{"path", request.path}, {"remote_addr", request.remote_addr}});
          return httplib::Server::HandlerResponse::Handled;
        }
        const bool reload_path = request.path == kReloadPath;
        const bool allowed = reload_path ? request.method == "POST"
                                         : request.method == "GET" || request.method == "HEAD";
        if (!allowed) {
          const char* methods = reload_path ? "POST" : "GET or HEAD";
          response.status = 405;
          response.set_header("Allow", reload_path ? "POST" : "GET, HEAD");
          response.set_content(fmt::format("method {} is not allowed on {}: use {}\n",
                                           request.method, request.path, methods),
                               "text/plain; charset=utf-8");
          return httplib::Server::HandlerResponse::Handled;
        }
        if (reload_path &&
            request.get_header_value<std::uint64_t>("Content-Length") > kMaxRequestBodyBytes) {
          response.status = 413;
          response.set_header("Connection", "close");
          response.set_content(fmt::format("request body too large: at most {} bytes, and "
                                           "the reload needs none\n",
                                           kMaxRequestBodyBytes),
                               "text/plain; charset=utf-8");
          return httplib::Server::HandlerResponse::Handled;
        }
        if (reload_path) {
          // Handled here, before routing, because cpp-httplib would first read a request
          // body, and `curl -X POST` sends no Content-Length: it would wait for the client
          // to close the connection. The reload needs no body.
          HandleReload(request, response);
          return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
      });

  server_->Get("/metrics", [this](const httplib::Request& request, httplib::Response& response) {
    const std::shared_ptr<const Snapshot> snapshot = snapshot_();
    response.set_header("Vary", "Accept-Encoding");
    if (AcceptsGzip(request.get_header_value("Accept-Encoding"))) {
      response.set_header("Content-Encoding", "gzip");
      SendPrepared(response, snapshot, &snapshot->gzip);
    } else {
      SendPrepared(response, snapshot, &snapshot->text);
    }
    logger_.Debug("scrape served", {{"remote_addr", request.remote_addr}});
  });

  server_->Get("/healthz", [this](const httplib::Request&, httplib::Response& response) {
    if (healthy_()) {
      response.set_content("ok\n", "text/plain; charset=utf-8");
    } else {
      response.status = 503;
      response.set_content("rule scheduler is not making progress\n", "text/plain; charset=utf-8");
    }
  });

  server_->Get("/", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(fmt::format(kLandingPage, EscapeHtml(options_.version_text)),
                         "text/html; charset=utf-8");
  });

  server_->set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (response.status == 404) {
      response.set_content(fmt::format("not found: {}\nsee / for the endpoints\n", request.path),
                           "text/plain; charset=utf-8");
    }
  });
}

void HttpServer::HandleReload(const httplib::Request& request, httplib::Response& response) {
  if (!reload_) {
    response.status = 404;
    response.set_content("configuration reload is not enabled\n", "text/plain; charset=utf-8");
    return;
  }
  logger_.Info("configuration reload requested", {{"remote_addr", request.remote_addr}});
  const std::string problems = reload_();
  if (problems.empty()) {
    response.set_content("configuration reloaded\n", "text/plain; charset=utf-8");
  } else {
    response.status = 500;
    response.set_content(
        fmt::format("configuration reload failed; the old configuration stays in force:\n{}\n",
                    problems),
        "text/plain; charset=utf-8");
  }
}

void HttpServer::Bind() {
  ListenAddress address;
  if (!ParseListenAddress(options_.listen_address, &address)) {
    throw ListenError(
        fmt::format("invalid listen address \"{}\": use host:port, :port or [ipv6]:port",
                    options_.listen_address));
  }
  if (!server_->is_valid()) {
    throw ListenError(TlsProblemText(options_.tls_cert_file, options_.tls_key_file));
  }
  bool bound = false;
  if (address.port == 0) {
    port_ = server_->bind_to_any_port(address.host);
    if (port_ <= 0 && options_.listen_address.front() == ':') {
      port_ = server_->bind_to_any_port("0.0.0.0");
    }
    bound = port_ > 0;
  } else {
    bound = server_->bind_to_port(address.host, address.port);
    // ":port" requests every address; on a host without IPv6, "::" cannot be bound, so
    // fall back to every IPv4 address.
    if (!bound && options_.listen_address.front() == ':') {
      bound = server_->bind_to_port("0.0.0.0", address.port);
    }
    port_ = address.port;
  }
  if (!bound) {
    throw ListenError(fmt::format(
        "cannot listen on \"{}\": the address is in use or not available on this host; stop "
        "the other process or choose another address with --web.listen-address",
        options_.listen_address));
  }
}

void HttpServer::Start() {
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // cpp-httplib's stop() does nothing until the accept loop runs, so a Stop() right after
  // Start() would leave the loop running forever. Wait for it to start (normally well
  // under a millisecond).
  for (int attempt = 0; attempt < 5000 && !server_->is_running(); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
  // cpp-httplib deletes the pool when serving ends.
  pool_ = nullptr;
}

}  // namespace koji_exporter
