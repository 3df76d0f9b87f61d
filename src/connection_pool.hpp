// The worker pool behind the HTTP server. cpp-httplib 0.11 only times out each single read
// or write, so a client that sends one byte every few seconds could hold a worker forever
// and keep a graceful shutdown from ending. This pool runs each connection on a worker
// and closes any connection that stays open longer than a deadline, or longer than the
// shutdown grace once the server stops. It also turns off Nagle's algorithm on each
// connection and answers plain HTTP sent to an HTTPS port with a hint.
#pragma once

#include <httplib.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "koji_exporter/log.hpp"

namespace koji_exporter {

struct ConnectionLimits {
  std::size_t threads = 16;
  /// Maximum time one client connection may stay open, whatever it does meanwhile.
  std::chrono::milliseconds connection_deadline{std::chrono::seconds(60)};
  /// Maximum time a connection may take to send the headers of a request, counted from
  /// its accept() or from its previous response, also while it waits for a thread.
  std::chrono::milliseconds request_deadline{std::chrono::seconds(15)};
  /// Time open connections get to finish once the server stops accepting.
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(5)};
  /// Whether the server speaks HTTPS, so that a plain HTTP request gets a hint.
  bool tls = false;
  /// How long a new connection may take to send its first byte.
  std::chrono::milliseconds read_timeout{std::chrono::seconds(10)};
};

class ConnectionPool : public httplib::TaskQueue {
 public:
  /// `port` is the server's listen port, which sets the accepted sockets apart from the
  /// process's other sockets.
  ConnectionPool(int port, ConnectionLimits limits, Logger logger);
  ~ConnectionPool() override;
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  /// Called by cpp-httplib right after accept(), with the task that serves the new
  /// connection and closes it.
  void enqueue(std::function<void()> serve) override;
  /// Marks the connection from `remote_addr`:`remote_port` as having sent a request's
  /// headers, so the request deadline no longer applies until its response is written.
  void RequestStarted(const std::string& remote_addr, int remote_port);
  /// Marks the connection's response as written; the next request's deadline starts.
  void RequestFinished(const std::string& remote_addr, int remote_port);

  /// Called by cpp-httplib once it stopped accepting: waits up to the shutdown grace for
  /// the connections to end, closes the rest, and joins the workers.
  void shutdown() override;

 private:
  struct Connection {
    std::function<void()> serve;
    int socket = -1;  // a duplicate of the accepted socket, or -1 if it was not found
    ino_t inode = 0;
    std::chrono::steady_clock::time_point started;
    // "address:port" of the client, as cpp-httplib's Request shows it.
    std::string peer;
    // Since when the connection owes a request, or nothing while one is served.
    std::optional<std::chrono::steady_clock::time_point> awaiting_request_since;
    bool closed_early = false;
  };

  void FindAcceptedSocket(Connection& connection) const;
  void Work();
  void Watch();
  /// Shuts the connection's socket down, logging `warning` unless it is empty.
  void CloseLocked(Connection& connection, const char* warning);
  void MarkRequest(const std::string& remote_addr, int remote_port, bool started);

  const int port_;
  const ConnectionLimits limits_;
  const Logger logger_;

  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable changed_;
  std::deque<std::shared_ptr<Connection>> queued_;
  std::vector<std::shared_ptr<Connection>> running_;
  bool stopping_ = false;
  bool joined_ = false;
  std::vector<std::thread> workers_;
  std::thread watchdog_;
};

}  // namespace koji_exporter
