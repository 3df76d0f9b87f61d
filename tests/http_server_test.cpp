// The HTTP server on an ephemeral loopback port: endpoints, gzip, brotli refusal,
// keep-alive scrapers, and a port that is already taken.
#include "koji_exporter/http_server.hpp"

#include <doctest/doctest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "koji_exporter/exposition.hpp"
#include "support/raw_request.hpp"
#include "support/trickling_client.hpp"

namespace koji_exporter {
namespace {

Logger QuietLogger() {
  return Logger(LogLevel::kError, LogFormat::kLogfmt, [](const std::string&) {});
}

std::shared_ptr<const Snapshot> MakeSnapshot() {
  auto snapshot = std::make_shared<Snapshot>();
  for (int i = 0; i < 200; ++i) {
    snapshot->text += "koji_task_load{host=\"builder-" + std::to_string(i) + "\"} 1.5\n";
  }
  snapshot->gzip = GzipCompress(snapshot->text);
  return snapshot;
}

// A server on 127.0.0.1 with a random port, serving a fixed snapshot.
struct TestServer {
  explicit TestServer(int threads = 16) : TestServer(MakeOptions(threads)) {}
  explicit TestServer(HttpServerOptions options) {
    options.version_text = "Version test.";
    server = std::make_unique<HttpServer>(
        options, [this] { return snapshot; }, [this] { return healthy.load(); }, QuietLogger());
    server->Bind();
    server->Start();
  }
  static HttpServerOptions MakeOptions(int threads) {
    HttpServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.worker_threads = threads;
    return options;
  }
  httplib::Client Client() const {
    httplib::Client client("127.0.0.1", server->port());
    client.set_connection_timeout(5);
    client.set_read_timeout(5);
    client.set_decompress(false);
    return client;
  }

  std::shared_ptr<const Snapshot> snapshot = MakeSnapshot();
  std::atomic<bool> healthy{true};
  std::unique_ptr<HttpServer> server;
};

}  // namespace

TEST_SUITE("http_server") {
  TEST_CASE("metrics are served as text format 0.0.4") {
    TestServer test;
    auto result = test.Client().Get("/metrics");
    REQUIRE(result);
    CHECK(result->status == 200);
    CHECK(result->get_header_value("Content-Type") == kExpositionContentType);
    CHECK_FALSE(result->has_header("Content-Encoding"));
    CHECK(result->body == test.snapshot->text);
  }

  TEST_CASE("metrics are gzipped when the scraper accepts gzip") {
    TestServer test;
    auto result = test.Client().Get("/metrics", {{"Accept-Encoding", "gzip"}});
    REQUIRE(result);
    CHECK(result->get_header_value("Content-Encoding") == "gzip");
    CHECK(result->body == test.snapshot->gzip);
  }

  TEST_CASE("brotli is never used even when offered first") {
    TestServer test;
    auto with_gzip = test.Client().Get("/metrics", {{"Accept-Encoding", "br, gzip, deflate"}});
    REQUIRE(with_gzip);
    CHECK(with_gzip->get_header_value("Content-Encoding") == "gzip");
    CHECK(with_gzip->body == test.snapshot->gzip);

    auto brotli_only = test.Client().Get("/metrics", {{"Accept-Encoding", "br"}});
    REQUIRE(brotli_only);
    CHECK_FALSE(brotli_only->has_header("Content-Encoding"));
    CHECK(brotli_only->body == test.snapshot->text);
  }

  TEST_CASE("HEAD on metrics sends headers only") {
    TestServer test;
    auto result = test.Client().Head("/metrics");
    REQUIRE(result);
    CHECK(result->status == 200);
    CHECK(result->body.empty());
  }

  TEST_CASE("healthz follows the health check") {
    TestServer test;
    auto healthy = test.Client().Get("/healthz");
    REQUIRE(healthy);
    CHECK(healthy->status == 200);
    CHECK(healthy->body == "ok\n");

    test.healthy = false;
    auto unhealthy = test.Client().Get("/healthz");
    REQUIRE(unhealthy);
    CHECK(unhealthy->status == 503);
  }

  TEST_CASE("landing page links both endpoints") {
    TestServer test;
    auto result = test.Client().Get("/");
    REQUIRE(result);
    CHECK(result->status == 200);
    CHECK(result->body.find("href=\"metrics\"") != std::string::npos);
    CHECK(result->body.find("href=\"healthz\"") != std::string::npos);
    CHECK(result->body.find("Version test.") != std::string::npos);
  }

  TEST_CASE("only GET and HEAD are allowed") {
    TestServer test;
    for (const char* path : {"/metrics", "/healthz", "/"}) {
      CAPTURE(path);
      auto post = test.Client().Post(path, "x", "text/plain");
      REQUIRE(post);
      CHECK(post->status == 405);
      CHECK(post->get_header_value("Allow") == "GET, HEAD");
      auto del = test.Client().Delete(path);
      REQUIRE(del);
      CHECK(del->status == 405);
    }
    auto post = test.Client().Post("/metrics", "x", "text/plain");
    CHECK(post->body == "method POST is not allowed on /metrics: use GET or HEAD\n");
  }

  TEST_CASE("too many request headers are refused") {
    TestServer test;
    httplib::Headers headers;
    for (int i = 0; i < 100; ++i) headers.emplace("X-Filler-" + std::to_string(i), "1");
    auto result = test.Client().Get("/metrics", headers);
    REQUIRE(result);
    CHECK(result->status == 431);
    auto normal = test.Client().Get("/metrics");
    REQUIRE(normal);
    CHECK(normal->status == 200);
  }

  TEST_CASE("the header limit counts the client's headers") {
    TestServer test;
    // Host and 63 more make 64 headers, the most allowed; one more is refused.
    std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    for (int i = 0; i < 62; ++i) request += "X-Filler-" + std::to_string(i) + ": 1\r\n";
    const std::string allowed = testing::SendRawRequest(test.server->port(), request + "\r\n");
    CHECK(allowed.rfind("HTTP/1.1 200 ", 0) == 0);
    const std::string refused =
        testing::SendRawRequest(test.server->port(), request + "X-One-Too-Many: 1\r\n\r\n");
    CHECK(refused.rfind("HTTP/1.1 431 ", 0) == 0);
  }

  TEST_CASE("a reload with a large body is refused") {
    TestServer test;
    std::atomic<int> reloads{0};
    test.server->SetReloadHandler([&reloads] {
      ++reloads;
      return std::string();
    });
    // The body is announced but never sent: the response must not wait for it.
    const std::string response = testing::SendRawRequest(
        test.server->port(),
        "POST /-/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n");
    CHECK(response.rfind("HTTP/1.1 413 ", 0) == 0);
    CHECK(response.find("request body too large: at most 65536 bytes") != std::string::npos);
    CHECK(reloads == 0);

    const std::string empty = testing::SendRawRequest(
        test.server->port(),
        "POST /-/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    CHECK(empty.rfind("HTTP/1.1 200 ", 0) == 0);
    CHECK(reloads == 1);
  }

  TEST_CASE("unknown paths get 404 with a hint") {
    TestServer test;
    auto result = test.Client().Get("/nope");
    REQUIRE(result);
    CHECK(result->status == 404);
    CHECK(result->body == "not found: /nope\nsee / for the endpoints\n");
  }

  TEST_CASE("healthz answers while scrapers hold keep-alive connections") {
    // Four threads; three scrapers keep their connections open, one thread stays free.
    TestServer test(4);
    std::vector<std::unique_ptr<httplib::Client>> scrapers;
    for (int i = 0; i < 3; ++i) {
      scrapers.push_back(std::make_unique<httplib::Client>("127.0.0.1", test.server->port()));
      scrapers.back()->set_keep_alive(true);
      scrapers.back()->set_read_timeout(5);
      auto result = scrapers.back()->Get("/metrics");
      REQUIRE(result);
      CHECK(result->status == 200);
    }
    auto health = test.Client().Get("/healthz");
    REQUIRE(health);
    CHECK(health->status == 200);
  }

  TEST_CASE("trickling clients are closed at the deadline") {
    // Both threads are taken by clients that send one byte every 100 ms; /healthz gets a
    // thread once the deadline closes them. Without it they would hold both for 60 s.
    HttpServerOptions options = TestServer::MakeOptions(2);
    options.connection_deadline = std::chrono::seconds(1);
    TestServer test(options);
    testing::TricklingClient first(test.server->port());
    testing::TricklingClient second(test.server->port());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));

    auto health = test.Client().Get("/healthz");
    REQUIRE(health);
    CHECK(health->status == 200);
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (first.ClosedByServer() && second.ClosedByServer()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(first.ClosedByServer());
    CHECK(second.ClosedByServer());
  }

  TEST_CASE("a request that never completes is closed at the request deadline") {
    // Keep-alive timeout plus read timeout: 2 s. The connection deadline stays at 60 s.
    HttpServerOptions options = TestServer::MakeOptions(4);
    options.keep_alive_timeout = std::chrono::seconds(1);
    options.read_timeout = std::chrono::seconds(1);
    TestServer test(options);
    testing::TricklingClient slow_client(test.server->port());
    for (int attempt = 0; attempt < 100 && !slow_client.ClosedByServer(); ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(slow_client.ClosedByServer());
  }

  TEST_CASE("a keep-alive client may pause between requests longer than the deadline") {
    // Request deadline 4 s (keep-alive 3 s plus read 1 s); four requests 2 s apart keep
    // one connection busy for 6 s, each within the deadline of its own.
    HttpServerOptions options = TestServer::MakeOptions(4);
    options.keep_alive_timeout = std::chrono::seconds(3);
    options.read_timeout = std::chrono::seconds(1);
    TestServer test(options);
    const int socket = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(socket >= 0);
    timeval timeout{5, 0};
    setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(test.server->port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(socket, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    int answered = 0;
    for (int round = 0; round < 4; ++round) {
      if (round > 0) std::this_thread::sleep_for(std::chrono::seconds(2));
      if (::send(socket, request.data(), request.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(request.size())) {
        break;
      }
      std::string response;
      char buffer[1024];
      while (response.find("\r\n\r\nok\n") == std::string::npos) {
        const ssize_t received = ::recv(socket, buffer, sizeof buffer, 0);
        if (received <= 0) break;
        response.append(buffer, static_cast<std::size_t>(received));
      }
      if (response.find("\r\n\r\nok\n") == std::string::npos) break;
      ++answered;
    }
    ::close(socket);
    CHECK(answered == 4);
  }

  TEST_CASE("stop closes connections after the grace") {
    HttpServerOptions options = TestServer::MakeOptions(4);
    options.shutdown_grace = std::chrono::milliseconds(200);
    TestServer test(options);
    testing::TricklingClient slow_client(test.server->port());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));

    // Without the grace, Stop() would wait until the client gives up after 60 s.
    test.server->Stop();
    for (int attempt = 0; attempt < 50 && !slow_client.ClosedByServer(); ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(slow_client.ClosedByServer());
  }

  TEST_CASE("healthz answers while scrapers load metrics") {
    // Six threads with keep-alive connections each fetch /metrics 100 times; meanwhile a
    // separate client checks /healthz 20 times. The pool has 16 threads, so the six
    // scrapers never occupy all of them.
    TestServer test;
    std::atomic<int> scrapes{0};
    std::vector<std::thread> scrapers;
    for (int i = 0; i < 6; ++i) {
      scrapers.emplace_back([&test, &scrapes] {
        httplib::Client client("127.0.0.1", test.server->port());
        client.set_keep_alive(true);
        client.set_read_timeout(5);
        for (int request = 0; request < 100; ++request) {
          auto result = client.Get("/metrics", {{"Accept-Encoding", "gzip"}});
          if (result && result->status == 200) ++scrapes;
        }
      });
    }
    int healthy = 0;
    for (int check = 0; check < 20; ++check) {
      auto result = test.Client().Get("/healthz");
      if (result && result->status == 200) ++healthy;
    }
    for (auto& scraper : scrapers) scraper.join();
    CHECK(healthy == 20);
    CHECK(scrapes == 600);
  }

  TEST_CASE("a port in use is refused instead of shared") {
    TestServer first;
    HttpServerOptions options;
    options.listen_address = "127.0.0.1:" + std::to_string(first.server->port());
    HttpServer second(
        options, [] { return std::shared_ptr<const Snapshot>(); }, [] { return true; },
        QuietLogger());
    CHECK_THROWS_AS(second.Bind(), ListenError);
  }

  TEST_CASE("an invalid listen address is refused with a hint") {
    HttpServerOptions options;
    options.listen_address = "localhost";
    HttpServer server(
        options, [] { return std::shared_ptr<const Snapshot>(); }, [] { return true; },
        QuietLogger());
    CHECK_THROWS_WITH_AS(server.Bind(),
                         "invalid listen address \"localhost\": use host:port, :port or "
                         "[ipv6]:port",
                         ListenError);
  }
}

TEST_SUITE("http_server") {
  TEST_CASE("listen addresses parse into host and port") {
    ListenAddress address;
    REQUIRE(ParseListenAddress(":19716", &address));
    CHECK(address.host == "::");
    CHECK(address.port == 19716);
    REQUIRE(ParseListenAddress("127.0.0.1:80", &address));
    CHECK(address.host == "127.0.0.1");
    REQUIRE(ParseListenAddress("[::1]:9000", &address));
    CHECK(address.host == "::1");
    CHECK(address.port == 9000);
    for (const char* bad :
         {"", ":", "19716", "host:", "host:65536", "::1:80", "[::1:80", "host:12a", "host:-1"}) {
      CAPTURE(bad);
      CHECK_FALSE(ParseListenAddress(bad, &address));
    }
  }

  TEST_CASE("accept-encoding parsing honours q values") {
    CHECK(AcceptsGzip("gzip"));
    CHECK(AcceptsGzip("br, gzip;q=0.5"));
    CHECK(AcceptsGzip("GZIP"));
    CHECK(AcceptsGzip("*"));
    CHECK(AcceptsGzip("deflate, gzip ; q=1.0"));
    CHECK_FALSE(AcceptsGzip(""));
    CHECK_FALSE(AcceptsGzip("br"));
    CHECK_FALSE(AcceptsGzip("gzip;q=0"));
    CHECK_FALSE(AcceptsGzip("identity, deflate"));
    CHECK_FALSE(AcceptsGzip("x-gzip-like"));
  }
}

}  // namespace koji_exporter
