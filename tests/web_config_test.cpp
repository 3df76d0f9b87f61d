// Tests for the web configuration: the exact message for every kind of problem, the fields
// of valid files, and Basic credentials checked against bcrypt hashes made here.
#include "koji_exporter/web_config.hpp"

#include <crypt.h>
#include <doctest/doctest.h>
#include <httplib.h>
#include <stdlib.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "koji_exporter/rule_loader.hpp"

namespace koji_exporter {
namespace {

namespace fs = std::filesystem;

// A temporary directory holding tls.crt and tls.key, removed afterwards. The loader only
// checks that they can be read, so their content is a placeholder.
class CertDirectory {
 public:
  CertDirectory() {
    std::string pattern = (fs::temp_directory_path() / "koji_exporter_web_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
    std::ofstream(path_ + "/tls.crt") << "certificate\n";
    std::ofstream(path_ + "/tls.key") << "key\n";
  }
  ~CertDirectory() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string WebFile() const { return path_ + "/web.yml"; }

 private:
  std::string path_;
};

std::string Lines(const std::vector<std::string>& messages) {
  std::string text;
  for (const auto& message : messages) text += message + "\n";
  return text;
}

std::vector<std::string> Problems(const std::string& yaml, const std::string& file_name) {
  try {
    ParseWebConfig(yaml, file_name);
  } catch (const ConfigError& error) {
    return error.problems();
  }
  return {};
}

// Makes a bcrypt hash of `password` at the lowest cost, so the tests stay fast.
std::string BcryptHash(const std::string& password) {
  std::array<char, CRYPT_GENSALT_OUTPUT_SIZE> salt{};
  REQUIRE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt.data(), salt.size()) != nullptr);
  auto data = std::make_unique<crypt_data>();
  const char* hash = crypt_r(password.c_str(), salt.data(), data.get());
  REQUIRE(hash != nullptr);
  REQUIRE(hash[0] == '$');
  return hash;
}

std::string BasicHeader(const std::string& user, const std::string& password) {
  return httplib::make_basic_authentication_header(user, password).second;
}

const char* const kHash = "$2b$04$MCLYpVf105BzpfA8ra8Ll.HwUe.WYOKdylCWl2v6xJbvOzSq64S5q";

struct ProblemCase {
  std::string name;
  std::string yaml;
  // Expected messages after "<dir>/web.yml:"; "{dir}" stands for the directory.
  std::vector<std::string> expected;
};

std::string Expand(std::string text, const std::string& directory) {
  const std::string placeholder = "{dir}";
  for (auto at = text.find(placeholder); at != std::string::npos; at = text.find(placeholder)) {
    text.replace(at, placeholder.size(), directory);
  }
  return text;
}

}  // namespace

TEST_SUITE("web_config") {
  TEST_CASE("each problem is reported with its file, line and column") {
    const CertDirectory directory;
    const std::string hash = std::string("  prometheus: ") + kHash + "\n";
    const std::vector<ProblemCase> cases = {
        {"unknown top-level key", "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\nbasic_auth: {}\n",
         {"4:1: unknown key \"basic_auth\" in the web configuration (allowed: tls_server_config, "
          "basic_auth_users)"}},
        {"http_server_config", "http_server_config:\n  http2: false\n",
         {"1:1: key \"http_server_config\" in the web configuration is not supported by "
          "koji_exporter (supported: tls_server_config, basic_auth_users)"}},
        {"not a map", "- tls_server_config\n",
         {"1:1: the web configuration must be a map with tls_server_config and basic_auth_users, "
          "but it is a list"}},
        {"tls section not a map", "tls_server_config: tls.crt\n",
         {"1:20: \"tls_server_config\" must be a map with cert_file and key_file, but it is the "
          "string \"tls.crt\""}},
        {"key_file missing", "tls_server_config:\n  cert_file: tls.crt\n",
         {"2:3: missing required key \"key_file\""}},
        {"cert_file missing", "tls_server_config:\n  key_file: tls.key\n",
         {"2:3: missing required key \"cert_file\""}},
        {"client_auth_type", "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
                             "  client_auth_type: RequireAndVerifyClientCert\n",
         {"4:3: key \"client_auth_type\" in tls_server_config is not supported by koji_exporter "
          "(supported: cert_file, key_file)"}},
        {"misspelled key", "tls_server_config:\n  cert: tls.crt\n  certfile: tls.crt\n  key_file: tls.key\n",
         {"2:3: key \"cert\" in tls_server_config is not supported by koji_exporter (supported: "
          "cert_file, key_file)",
          "2:3: missing required key \"cert_file\"",
          "3:3: unknown key \"certfile\" in tls_server_config (allowed: cert_file, key_file)"}},
        {"cert_file a list", "tls_server_config:\n  cert_file: [tls.crt]\n  key_file: tls.key\n",
         {"2:14: \"cert_file\" must be a string, but it is a list"}},
        {"cert_file empty", "tls_server_config:\n  cert_file: \"\"\n  key_file: tls.key\n",
         {"2:14: \"cert_file\" must not be empty"}},
        {"cert_file unreadable", "tls_server_config:\n  cert_file: missing.crt\n  key_file: tls.key\n",
         {"2:14: could not read cert_file \"{dir}/missing.crt\": No such file or directory"}},
        {"key_file a directory", "tls_server_config:\n  cert_file: tls.crt\n  key_file: .\n",
         {"3:13: could not read key_file \"{dir}/.\": Is a directory"}},
        {"users a list", "basic_auth_users: [prometheus]\n",
         {"1:19: \"basic_auth_users\" must be a map of user names to bcrypt hashes, but it is a "
          "list"}},
        {"hash not bcrypt", "basic_auth_users:\n  prometheus: $1$salt$notbcrypt\n",
         {"2:15: user \"prometheus\": the password hash is not a bcrypt hash: expected $2a$, $2b$ "
          "or $2y$, a cost from 04 to 31, \"$\" and 53 characters"}},
        {"hash with cost 3",
         "basic_auth_users:\n  prometheus: $2b$03$MCLYpVf105BzpfA8ra8Ll.HwUe.WYOKdylCWl2v6xJbvOzSq64S5q\n",
         {"2:15: user \"prometheus\": the password hash is not a bcrypt hash: expected $2a$, $2b$ "
          "or $2y$, a cost from 04 to 31, \"$\" and 53 characters"}},
        {"hash missing", "basic_auth_users:\n  prometheus:\n",
         {"2:3: user \"prometheus\": the password hash must be a string, but it has no value"}},
        {"user with colon", std::string("basic_auth_users:\n  \"a:b\": ") + kHash + "\n",
         {"2:3: user \"a:b\": a user name must not contain \":\", because Basic auth separates "
          "it from the password with one"}},
        {"duplicate user", "basic_auth_users:\n" + hash + hash,
         {"3:3: duplicate key \"prometheus\" (first at {dir}/web.yml:2:3)"}},
        {"every problem", "tls_server_config:\n  cert_file: missing.crt\nbasic_auth_users:\n"
                          "  prometheus: secret\nextra: 1\n",
         {"2:3: missing required key \"key_file\"",
          "2:14: could not read cert_file \"{dir}/missing.crt\": No such file or directory",
          "4:15: user \"prometheus\": the password hash is not a bcrypt hash: expected $2a$, $2b$ "
          "or $2y$, a cost from 04 to 31, \"$\" and 53 characters",
          "5:1: unknown key \"extra\" in the web configuration (allowed: tls_server_config, "
          "basic_auth_users)"}},
    };
    for (const auto& row : cases) {
      CAPTURE(row.name);
      std::vector<std::string> expected;
      for (const auto& message : row.expected) {
        expected.push_back(directory.WebFile() + ":" + Expand(message, directory.path()));
      }
      CHECK(Lines(Problems(row.yaml, directory.WebFile())) == Lines(expected));
    }
  }

  TEST_CASE("a rejected hash is not shown in the message") {
    const std::string hash = "$2b$10$short-and-secret";
    const auto problems = Problems("basic_auth_users:\n  prometheus: " + hash + "\n", "web.yml");
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].find(hash) == std::string::npos);
    CHECK(problems[0].find("secret") == std::string::npos);
  }

  TEST_CASE("relative certificate paths are resolved against the file's directory") {
    const CertDirectory directory;
    const WebConfig config = ParseWebConfig(
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: " + directory.path() + "/tls.key\n",
        directory.WebFile());
    CHECK(config.UsesTls());
    CHECK(config.tls_cert_file == directory.path() + "/tls.crt");
    CHECK(config.tls_key_file == directory.path() + "/tls.key");
    CHECK(config.basic_auth_users.empty());
  }

  TEST_CASE("users without TLS are accepted") {
    const WebConfig config =
        ParseWebConfig(std::string("basic_auth_users:\n  prometheus: ") + kHash + "\n", "web.yml");
    CHECK_FALSE(config.UsesTls());
    REQUIRE(config.basic_auth_users.size() == 1);
    CHECK(config.basic_auth_users.at("prometheus") == kHash);
  }

  TEST_CASE("an empty file means plain HTTP without passwords") {
    const WebConfig config = ParseWebConfig("", "web.yml");
    CHECK_FALSE(config.UsesTls());
    CHECK(config.basic_auth_users.empty());
  }

  TEST_CASE("an unreadable file is reported by name") {
    CHECK_THROWS_WITH_AS(
        LoadWebConfig("/nonexistent/web.yml"),
        "/nonexistent/web.yml: could not read web configuration file: No such file or directory",
        ConfigError);
  }

  TEST_CASE("bcrypt verification accepts only the right password") {
    const std::string hash = BcryptHash("correct horse");
    CHECK(VerifyBcryptPassword("correct horse", hash));
    CHECK_FALSE(VerifyBcryptPassword("correct horsE", hash));
    CHECK_FALSE(VerifyBcryptPassword("", hash));
    CHECK_FALSE(VerifyBcryptPassword(std::string("correct horse\0x", 15), hash));
    CHECK_FALSE(VerifyBcryptPassword("correct horse", "not a hash"));
  }

  TEST_CASE("bcrypt verification accepts the 2a and 2y prefixes") {
    const std::string hash = BcryptHash("secret");
    for (const char* prefix : {"$2a$", "$2y$"}) {
      CAPTURE(prefix);
      CHECK(VerifyBcryptPassword("secret", prefix + hash.substr(4)));
    }
  }

  TEST_CASE("basic auth accepts a listed user with the right password") {
    const BasicAuth auth({{"prometheus", BcryptHash("s3cret:with colon")},
                          {"grafana", BcryptHash("other")}});
    CHECK(auth.Check(BasicHeader("prometheus", "s3cret:with colon")));
    // The second check is served from the cache of verified passwords.
    CHECK(auth.Check(BasicHeader("prometheus", "s3cret:with colon")));
    CHECK(auth.Check(BasicHeader("grafana", "other")));
    CHECK(auth.Check("basic " + BasicHeader("grafana", "other").substr(6)));
  }

  TEST_CASE("basic auth rejects wrong credentials") {
    const BasicAuth auth({{"prometheus", BcryptHash("s3cret")}});
    REQUIRE(auth.Check(BasicHeader("prometheus", "s3cret")));

    CHECK_FALSE(auth.Check(""));
    CHECK_FALSE(auth.Check(BasicHeader("prometheus", "wrong")));
    CHECK_FALSE(auth.Check(BasicHeader("prometheus", "s3cre")));
    CHECK_FALSE(auth.Check(BasicHeader("prometheus", "s3cret ")));
    CHECK_FALSE(auth.Check(BasicHeader("grafana", "s3cret")));
    CHECK_FALSE(auth.Check("Bearer " + BasicHeader("prometheus", "s3cret").substr(6)));
    CHECK_FALSE(auth.Check("Basic"));
    CHECK_FALSE(auth.Check("Basic not*base64"));
    CHECK_FALSE(auth.Check("Basic cHJvbWV0aGV1cw=="));  // "prometheus" without a colon
    // The cached password still counts after the failures.
    CHECK(auth.Check(BasicHeader("prometheus", "s3cret")));
  }

  TEST_CASE("basic auth without users rejects everyone") {
    const BasicAuth auth({});
    CHECK_FALSE(auth.Check(BasicHeader("prometheus", "s3cret")));
  }
}

}  // namespace koji_exporter
