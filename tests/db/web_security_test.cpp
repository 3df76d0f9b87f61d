// The koji_exporter binary with --web.config.file: HTTPS with a self-signed certificate made
// by the openssl command, basic auth on every endpoint, and no password in the log.
#include <crypt.h>
#include <doctest/doctest.h>
#include <signal.h>

#include <array>
#include <cstdlib>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <httplib.h>

#include "db/exporter_process.hpp"
#include "db/test_database.hpp"
#include "support/raw_request.hpp"

namespace koji_exporter {
namespace {

using testing::ClientOptions;
using testing::ExporterProcess;
using testing::RunExporter;
using testing::TempDir;
using testing::TestDatabase;

constexpr const char* kUser = "prometheus";
constexpr const char* kPassword = "scrape-pass-5b1e9c";

constexpr const char* kRules = R"(rules:
  - name: one
    interval: 1s
    timeout: 500ms
    sql: SELECT 1 AS value
    metrics:
      - name: test_web_one
        type: gauge
        help: Always 1.
        value: value
)";

std::string BcryptHash(const std::string& password) {
  std::array<char, CRYPT_GENSALT_OUTPUT_SIZE> salt{};
  REQUIRE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt.data(), salt.size()) != nullptr);
  auto data = std::make_unique<crypt_data>();
  const char* hash = crypt_r(password.c_str(), salt.data(), data.get());
  REQUIRE(hash != nullptr);
  REQUIRE(hash[0] == '$');
  return hash;
}

// Writes tls.crt and tls.key, a self-signed certificate for 127.0.0.1, into `directory`.
void WriteCertificate(const TempDir& directory) {
  const std::string command = fmt::format(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
      "-keyout '{0}/tls.key' -out '{0}/tls.crt' >'{0}/openssl.log' 2>&1",
      directory.path());
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0,
                  "the openssl command failed; install the openssl package");
}

// A rule file, a main file for `database` and, when given, a web configuration file.
struct Setup {
  TempDir directory;
  std::string config;
  std::string web_config;
  std::string hash;

  Setup(const TestDatabase& database, const std::string& web_yaml) {
    directory.Write("rules/test.yaml", kRules);
    config = directory.Write(
        "koji_exporter.yaml",
        fmt::format("database:\n  dsn: \"{}\"\nrule_files: [\"rules/*.yaml\"]\n",
                    database.Conninfo()));
    hash = BcryptHash(kPassword);
    web_config = directory.Write("web.yml", fmt::format(web_yaml, fmt::arg("user", kUser),
                                                        fmt::arg("hash", hash)));
  }
};

constexpr const char* kTlsAndAuth = R"(tls_server_config:
  cert_file: tls.crt
  key_file: tls.key
basic_auth_users:
  {user}: "{hash}"
)";

// Sets up an HTTPS client that accepts the self-signed certificate.
void Configure(httplib::SSLClient& client) {
  client.enable_server_certificate_verification(false);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
}

}  // namespace

TEST_SUITE("web security end to end") {
  TEST_CASE("https with the right credentials serves every endpoint") {
    TestDatabase database;
    Setup setup(database, kTlsAndAuth);
    WriteCertificate(setup.directory);
    ExporterProcess exporter(setup.config, {"--web.config.file=" + setup.web_config});
    CHECK(exporter.Log().find("tls=true basic_auth_users=1") != std::string::npos);

    httplib::SSLClient client("127.0.0.1", exporter.port());
    Configure(client);
    client.set_basic_auth(kUser, kPassword);
    for (const char* path : {"/metrics", "/healthz", "/"}) {
      CAPTURE(path);
      const auto response = client.Get(path);
      REQUIRE(response);
      CHECK(response->status == 200);
    }

    exporter.SetClientOptions(ClientOptions{true, kUser, kPassword});
    const std::string metrics = exporter.WaitForMetric("test_web_one 1\n");
    CHECK(metrics.find("test_web_one 1\n") != std::string::npos);
    int status = 0;
    exporter.Post("/-/reload", &status);
    CHECK(status == 200);
  }

  TEST_CASE("plain http to the tls port gets a hint") {
    TestDatabase database;
    Setup setup(database, kTlsAndAuth);
    WriteCertificate(setup.directory);
    ExporterProcess exporter(setup.config, {"--web.config.file=" + setup.web_config});

    exporter.SetClientOptions(ClientOptions{false, kUser, kPassword});
    int status = -1;
    CHECK(exporter.Get("/healthz", &status) == "this port speaks HTTPS: use an https:// URL\n");
    CHECK(status == 400);
    const std::string raw = testing::SendRawRequest(
        exporter.port(), "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    CHECK(raw.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
  }

  TEST_CASE("missing or wrong credentials get 401") {
    TestDatabase database;
    Setup setup(database, kTlsAndAuth);
    WriteCertificate(setup.directory);
    ExporterProcess exporter(setup.config,
                             {"--web.config.file=" + setup.web_config, "--log.level=debug"});

    httplib::SSLClient anonymous("127.0.0.1", exporter.port());
    Configure(anonymous);
    for (const char* path : {"/metrics", "/healthz", "/", "/no-such-page"}) {
      CAPTURE(path);
      const auto response = anonymous.Get(path);
      REQUIRE(response);
      CHECK(response->status == 401);
      CHECK(response->get_header_value("WWW-Authenticate") == R"(Basic realm="koji_exporter")");
    }
    const auto reload = anonymous.Post("/-/reload", "", "text/plain");
    REQUIRE(reload);
    CHECK(reload->status == 401);

    httplib::SSLClient wrong_password("127.0.0.1", exporter.port());
    Configure(wrong_password);
    wrong_password.set_basic_auth(kUser, "not-the-password");
    const auto rejected = wrong_password.Get("/metrics");
    REQUIRE(rejected);
    CHECK(rejected->status == 401);
    CHECK(rejected->body.find("test_web_one") == std::string::npos);

    httplib::SSLClient wrong_user("127.0.0.1", exporter.port());
    Configure(wrong_user);
    wrong_user.set_basic_auth("grafana", kPassword);
    const auto unknown = wrong_user.Get("/healthz");
    REQUIRE(unknown);
    CHECK(unknown->status == 401);
    CHECK(exporter.Log().find("msg=\"request unauthorized\" path=/metrics") != std::string::npos);
  }

  TEST_CASE("basic auth works without tls") {
    TestDatabase database;
    Setup setup(database, "basic_auth_users:\n  {user}: \"{hash}\"\n");
    ExporterProcess exporter(setup.config, {"--web.config.file=" + setup.web_config});
    CHECK(exporter.Log().find("tls=false basic_auth_users=1") != std::string::npos);

    int status = 0;
    exporter.Get("/healthz", &status);
    CHECK(status == 401);
    exporter.SetClientOptions(ClientOptions{false, kUser, kPassword});
    exporter.Get("/healthz", &status);
    CHECK(status == 200);
  }

  TEST_CASE("neither the password nor its hash is logged") {
    TestDatabase database;
    Setup setup(database, kTlsAndAuth);
    WriteCertificate(setup.directory);
    ExporterProcess exporter(setup.config,
                             {"--web.config.file=" + setup.web_config, "--log.level=debug"});

    exporter.SetClientOptions(ClientOptions{true, kUser, kPassword});
    exporter.WaitForMetric("test_web_one 1\n");
    exporter.SetClientOptions(ClientOptions{true, kUser, std::string(kPassword) + "-wrong"});
    int status = 0;
    exporter.Get("/metrics", &status);
    CHECK(status == 401);
    exporter.SetClientOptions(ClientOptions{true, kPassword, kPassword});
    exporter.Get("/metrics", &status);
    CHECK(status == 401);
    CHECK(exporter.Stop(SIGTERM) == 0);

    const std::string log = exporter.Log();
    CHECK(log.find("request unauthorized") != std::string::npos);
    CHECK(log.find(kPassword) == std::string::npos);
    CHECK(log.find(setup.hash) == std::string::npos);
    CHECK(log.find(setup.hash.substr(7)) == std::string::npos);
  }

  TEST_CASE("config check reports web configuration problems") {
    TestDatabase database;
    Setup setup(database, "tls_server_config:\n  cert_file: missing.crt\n"
                          "basic_auth_users:\n  {user}: not-a-hash\n");
    auto result = RunExporter(
        {"--config.file=" + setup.config, "--web.config.file=" + setup.web_config, "--config.check"});
    CHECK(result.exit_code == 1);
    CHECK(result.output.find(setup.web_config + ":2:3: missing required key \"key_file\"") !=
          std::string::npos);
    CHECK(result.output.find(fmt::format("{}:2:14: could not read cert_file \"{}/missing.crt\"",
                                         setup.web_config, setup.directory.path())) !=
          std::string::npos);
    CHECK(result.output.find(setup.web_config + ":4:15: user \"prometheus\": the password hash "
                             "is not a bcrypt hash") != std::string::npos);
    CHECK(result.output.find("not-a-hash") == std::string::npos);

    const std::string good = setup.directory.Write(
        "good.yml", fmt::format("basic_auth_users:\n  {}: \"{}\"\n", kUser, setup.hash));
    result = RunExporter(
        {"--config.file=" + setup.config, "--web.config.file=" + good, "--config.check"});
    CHECK(result.exit_code == 0);
    CHECK(result.output.find(good + ": ok (no TLS, 1 basic auth user(s))\n") != std::string::npos);
  }

  TEST_CASE("a certificate that does not load stops startup") {
    TestDatabase database;
    Setup setup(database, kTlsAndAuth);
    setup.directory.Write("tls.crt", "not a certificate\n");
    setup.directory.Write("tls.key", "not a key\n");
    const auto result = RunExporter({"--config.file=" + setup.config,
                                     "--web.config.file=" + setup.web_config,
                                     "--web.listen-address=127.0.0.1:0"});
    CHECK(result.exit_code == 1);
    CHECK(result.output.find(setup.web_config + ": could not load TLS certificate") !=
          std::string::npos);
  }

  TEST_CASE("config check loads the certificate and key") {
    TestDatabase database;
    Setup setup(database, kTlsAndAuth);
    WriteCertificate(setup.directory);
    const std::vector<std::string> check = {"--config.file=" + setup.config,
                                            "--web.config.file=" + setup.web_config,
                                            "--config.check"};
    CHECK(RunExporter(check).exit_code == 0);

    // Both files exist, but the key belongs to another certificate, as after a renewal
    // that replaced only one of them.
    const std::string certificate = setup.directory.path() + "/tls.crt";
    REQUIRE(std::system(fmt::format("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
                                    "/CN=other -keyout '{0}/other.key' -out '{0}/other.crt' "
                                    "2>/dev/null && cp '{0}/other.key' '{0}/tls.key'",
                                    setup.directory.path())
                            .c_str()) == 0);
    const auto result = RunExporter(check);
    CHECK(result.exit_code == 1);
    CHECK(result.output.find(setup.web_config + ": could not load TLS certificate \"" +
                             certificate + "\"") != std::string::npos);
  }
}

}  // namespace koji_exporter
