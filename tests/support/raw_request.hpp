// Sends a request exactly as written to 127.0.0.1 and returns what comes back, for tests of
// what HTTP clients would not send: exact header counts, bodies that never come, plain
// HTTP to an HTTPS port.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace koji_exporter::testing {

/// Sends `request` to 127.0.0.1:`port` and returns the bytes received until the server
/// closes the connection or sends nothing for 5 s.
inline std::string SendRawRequest(int port, const std::string& request) {
  const int socket = ::socket(AF_INET, SOCK_STREAM, 0);
  if (socket < 0) throw std::runtime_error("cannot create a socket");
  timeval timeout{5, 0};
  setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(socket, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(socket);
    throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  ::send(socket, request.data(), request.size(), MSG_NOSIGNAL);
  std::string response;
  char buffer[4096];
  while (true) {
    const ssize_t received = ::recv(socket, buffer, sizeof buffer, 0);
    if (received <= 0) break;
    response.append(buffer, static_cast<std::size_t>(received));
  }
  ::close(socket);
  return response;
}

}  // namespace koji_exporter::testing
