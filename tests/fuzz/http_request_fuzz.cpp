// libFuzzer target for the HTTP request path: each input is sent as raw bytes to a real
// HttpServer on 127.0.0.1, which must respond or close the connection, never crash or
// hang. A well-formed request for /healthz afterwards must still get 200.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "koji_exporter/exposition.hpp"
#include "koji_exporter/http_server.hpp"

namespace {

using koji_exporter::HttpServer;

std::shared_ptr<const koji_exporter::Snapshot> FixedSnapshot() {
  static const auto snapshot = [] {
    auto built = std::make_shared<koji_exporter::Snapshot>();
    built->text = "koji_hosts_ready{host=\"builder-01\"} 1\n";
    built->gzip = koji_exporter::GzipCompress(built->text);
    return built;
  }();
  return snapshot;
}

HttpServer& Server() {
  static HttpServer* server = [] {
    koji_exporter::HttpServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.worker_threads = 4;
    options.read_timeout = std::chrono::seconds(1);
    options.write_timeout = std::chrono::seconds(1);
    auto* created = new HttpServer(
        options, [] { return FixedSnapshot(); }, [] { return true; },
        koji_exporter::Logger(koji_exporter::LogLevel::kError,
                              koji_exporter::LogFormat::kLogfmt, [](const std::string&) {}));
    created->SetReloadHandler([] { return std::string(); });
    created->Bind();
    created->Start();
    return created;
  }();
  return *server;
}

// Sends `request` on a new connection and reads until the server closes it or 1 s passes.
// Returns "" when no connection could be made.
std::string Exchange(const std::string& request, bool half_close) {
  const int socket = ::socket(AF_INET, SOCK_STREAM, 0);
  if (socket < 0) std::abort();
  timeval timeout{1, 0};
  setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(Server().port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(socket, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(socket);
    return "";
  }

  send(socket, request.data(), request.size(), MSG_NOSIGNAL);
  if (half_close) shutdown(socket, SHUT_WR);
  std::string response;
  char buffer[4096];
  while (true) {
    const ssize_t received = recv(socket, buffer, sizeof buffer, 0);
    if (received <= 0) break;
    response.append(buffer, static_cast<std::size_t>(received));
  }
  close(socket);
  return response;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Exchange(std::string(reinterpret_cast<const char*>(data), size), true);

  // The server must still serve a plain request after whatever came before. Its few worker
  // threads may still be busy with the previous connection for up to their 1 s read
  // timeout (slower under the sanitizers), so a few tries are allowed over about 5 s.
  for (int attempt = 0; attempt < 50; ++attempt) {
    const std::string health =
        Exchange("GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n", false);
    if (health.rfind("HTTP/1.1 200", 0) == 0) return 0;
    usleep(100 * 1000);
  }
  std::abort();
}
