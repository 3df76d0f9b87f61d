#include "connection_pool.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace koji_exporter {
namespace {

using Clock = std::chrono::steady_clock;

// How often the watchdog looks for connections past their deadline.
constexpr auto kWatchInterval = std::chrono::milliseconds(250);

// Local port of `socket`, or 0 when it has none.
int LocalPort(int socket) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (getsockname(socket, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  }
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  }
  return 0;
}

// "address:port" of the peer of `socket`, for log lines.
std::string PeerAddress(int socket) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (getpeername(socket, reinterpret_cast<sockaddr*>(&address), &length) != 0) return "unknown";
  char host[INET6_ADDRSTRLEN] = "";
  int port = 0;
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    inet_ntop(AF_INET, &v4.sin_addr, host, sizeof host);
    port = ntohs(v4.sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    inet_ntop(AF_INET6, &v6.sin6_addr, host, sizeof host);
    port = ntohs(v6.sin6_port);
  }
  return fmt::format("{}:{}", host, port);
}

// Answers a plain HTTP request on an HTTPS port with a 400 that says so, as Go's servers
// do; without it the client sees the connection close with no reply. A TLS handshake
// starts with the byte 0x16, an HTTP request with the letters of its method.
void AnswerPlainHttp(int socket, std::chrono::milliseconds wait) {
  pollfd readable{socket, POLLIN, 0};
  if (poll(&readable, 1, static_cast<int>(wait.count())) != 1) {
    // Nothing within the read timeout: the TLS handshake would wait as long again.
    ::shutdown(socket, SHUT_RDWR);
    return;
  }
  char first = 0;
  if (recv(socket, &first, 1, MSG_PEEK) != 1 || first < 'A' || first > 'Z') return;
  static const std::string kBody = "this port speaks HTTPS: use an https:// URL\n";
  const std::string response = fmt::format(
      "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
      "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
      kBody.size(), kBody);
  send(socket, response.data(), response.size(), MSG_NOSIGNAL);
  ::shutdown(socket, SHUT_RDWR);
}

bool IsListening(int socket) {
  int listening = 0;
  socklen_t length = sizeof listening;
  return getsockopt(socket, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0 && listening;
}

std::string Seconds(std::chrono::milliseconds duration) {
  return fmt::format("{:g}s", duration.count() / 1000.0);
}

}  // namespace

ConnectionPool::ConnectionPool(int port, ConnectionLimits limits, Logger logger)
    : port_(port), limits_(limits), logger_(std::move(logger)) {
  const std::size_t threads = std::max<std::size_t>(1, limits_.threads);
  for (std::size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  watchdog_ = std::thread([this] { Watch(); });
}

ConnectionPool::~ConnectionPool() { shutdown(); }

// cpp-httplib hands over a task, not the socket it accepted. The socket is the one
// connected to our port and not tracked yet: the accept loop runs on one
// thread and calls enqueue() right after each accept(), so there is exactly one. A
// duplicate of it lets the watchdog shut the connection down without racing the task's
// close(): the number stays ours until the task has ended.
void ConnectionPool::FindAcceptedSocket(Connection& connection) const {
  DIR* directory = opendir("/proc/self/fd");
  if (directory == nullptr) return;
  int found = -1;
  ino_t found_inode = 0;
  int candidates = 0;
  while (const dirent* entry = readdir(directory)) {
    char* end = nullptr;
    const long number = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;
    const int fd = static_cast<int>(number);
    if (fd == dirfd(directory)) continue;
    struct stat status {};
    if (fstat(fd, &status) != 0 || !S_ISSOCK(status.st_mode)) continue;
    if (LocalPort(fd) != port_ || IsListening(fd)) continue;
    const auto tracked = [&status](const std::shared_ptr<Connection>& other) {
      return other->socket >= 0 && other->inode == status.st_ino;
    };
    if (std::any_of(queued_.begin(), queued_.end(), tracked) ||
        std::any_of(running_.begin(), running_.end(), tracked)) {
      continue;
    }
    ++candidates;
    found = fd;
    found_inode = status.st_ino;
  }
  closedir(directory);
  if (candidates != 1) return;
  connection.socket = fcntl(found, F_DUPFD_CLOEXEC, 3);
  connection.inode = found_inode;
  // Small responses such as /healthz would otherwise wait for the client's delayed ACK,
  // about 40 ms behind a TLS record.
  int yes = 1;
  setsockopt(connection.socket, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
}

void ConnectionPool::enqueue(std::function<void()> serve) {
  auto connection = std::make_shared<Connection>();
  connection->serve = std::move(serve);
  connection->awaiting_request_since = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    FindAcceptedSocket(*connection);
    if (connection->socket >= 0) connection->peer = PeerAddress(connection->socket);
    if (connection->socket < 0) {
      logger_.Debug("accepted connection not found among the open sockets; it has no deadline");
    }
    // A connection accepted while stopping only gets its socket closed.
    if (stopping_) CloseLocked(*connection, "");
    queued_.push_back(connection);
  }
  work_ready_.notify_one();
}

void ConnectionPool::Work() {
  while (true) {
    std::shared_ptr<Connection> connection;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [this] { return !queued_.empty() || joined_; });
      if (queued_.empty()) return;
      connection = queued_.front();
      queued_.pop_front();
      connection->started = Clock::now();
      running_.push_back(connection);
    }
    if (limits_.tls && connection->socket >= 0) {
      AnswerPlainHttp(connection->socket, limits_.read_timeout);
    }
    connection->serve();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_.erase(std::find(running_.begin(), running_.end(), connection));
      if (connection->socket >= 0) ::close(connection->socket);
      connection->socket = -1;
    }
    changed_.notify_all();
  }
}

// Shuts the socket down, which makes the task's blocked read or write fail at once; the
// task then closes its own descriptor as usual.
void ConnectionPool::CloseLocked(Connection& connection, const char* warning) {
  if (connection.socket < 0 || connection.closed_early) return;
  connection.closed_early = true;
  if (*warning != '\0') {
    logger_.Warn(warning, {{"remote_addr", PeerAddress(connection.socket)}});
  }
  ::shutdown(connection.socket, SHUT_RDWR);
}

void ConnectionPool::MarkRequest(const std::string& remote_addr, int remote_port, bool started) {
  const std::string peer = fmt::format("{}:{}", remote_addr, remote_port);
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& connection : running_) {
    if (connection->peer != peer) continue;
    if (started) {
      connection->awaiting_request_since.reset();
    } else {
      connection->awaiting_request_since = Clock::now();
    }
  }
}

void ConnectionPool::RequestStarted(const std::string& remote_addr, int remote_port) {
  MarkRequest(remote_addr, remote_port, true);
}

void ConnectionPool::RequestFinished(const std::string& remote_addr, int remote_port) {
  MarkRequest(remote_addr, remote_port, false);
}

void ConnectionPool::Watch() {
  const std::string too_long = fmt::format("closed a client connection open longer than {}",
                                           Seconds(limits_.connection_deadline));
  const std::string no_request =
      fmt::format("closed a client connection that sent no complete request within {}",
                  Seconds(limits_.request_deadline));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!joined_) {
    changed_.wait_for(lock, kWatchInterval);
    const auto now = Clock::now();
    const auto overdue = [&](const Connection& connection) {
      return connection.awaiting_request_since &&
             now - *connection.awaiting_request_since > limits_.request_deadline;
    };
    for (auto& connection : running_) {
      if (overdue(*connection)) {
        CloseLocked(*connection, no_request.c_str());
      } else if (now - connection->started > limits_.connection_deadline) {
        CloseLocked(*connection, too_long.c_str());
      }
    }
    // A connection still waiting for a thread gets no more time than a served one.
    for (auto& connection : queued_) {
      if (overdue(*connection)) CloseLocked(*connection, no_request.c_str());
    }
  }
}

void ConnectionPool::shutdown() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (joined_) return;
  stopping_ = true;
  // Connections still waiting for a worker have no response in flight.
  for (auto& connection : queued_) CloseLocked(*connection, "");
  const bool finished = changed_.wait_for(lock, limits_.shutdown_grace,
                                          [this] { return queued_.empty() && running_.empty(); });
  if (!finished) {
    logger_.Warn("closing client connections that did not finish within the shutdown grace",
                 {{"connections", std::to_string(running_.size() + queued_.size())},
                  {"grace", Seconds(limits_.shutdown_grace)}});
    for (auto& connection : running_) CloseLocked(*connection, "");
    for (auto& connection : queued_) CloseLocked(*connection, "");
  }
  joined_ = true;
  lock.unlock();
  work_ready_.notify_all();
  changed_.notify_all();
  for (auto& worker : workers_) worker.join();
  watchdog_.join();
}

}  // namespace koji_exporter
