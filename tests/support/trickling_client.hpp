// A slow HTTP client for tests: it connects to 127.0.0.1 and sends the headers of a request
// one byte every 100 ms without ever finishing them, as a stalled or hostile client does.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>

namespace koji_exporter::testing {

class TricklingClient {
 public:
  /// Connects to 127.0.0.1:`port` and starts sending. The client stops after 60 s, when
  /// the server closes the connection, or when it is destroyed.
  explicit TricklingClient(int port) {
    socket_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (socket_ < 0 ||
        ::connect(socket_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      if (socket_ >= 0) ::close(socket_);
      throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
    }
    sender_ = std::thread([this] { Send(); });
  }
  ~TricklingClient() {
    done_ = true;
    sender_.join();
    ::close(socket_);
  }
  TricklingClient(const TricklingClient&) = delete;
  TricklingClient& operator=(const TricklingClient&) = delete;

  /// Whether the server closed the connection while the client was still sending.
  bool ClosedByServer() const { return closed_by_server_; }

 private:
  void Send() {
    const std::string headers = "GET /metrics HTTP/1.1\r\nX-Padding: " + std::string(600, 'a');
    for (std::size_t sent = 0; sent < headers.size() && !done_; ++sent) {
      if (::send(socket_, &headers[sent], 1, MSG_NOSIGNAL) != 1) {
        closed_by_server_ = true;
        return;
      }
      char byte = 0;
      if (::recv(socket_, &byte, 1, MSG_DONTWAIT | MSG_PEEK) == 0) {
        closed_by_server_ = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  int socket_ = -1;
  std::atomic<bool> done_{false};
  std::atomic<bool> closed_by_server_{false};
  std::thread sender_;
};

}  // namespace koji_exporter::testing
