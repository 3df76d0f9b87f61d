// Connection strings: both DSN forms, password injection and redaction.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

#include "koji_exporter/conninfo.hpp"

namespace koji_exporter {

// The TCP keepalive settings BuildConninfo adds to every DSN that sets none.
const std::string kKeepalives =
    " keepalives='1' keepalives_idle='30' keepalives_interval='10' keepalives_count='3'";

TEST_SUITE("conninfo") {
  // Options come out in libpq's own keyword order, whatever order the DSN used.
  TEST_CASE("keyword dsn gets the password and defaults") {
    CHECK(BuildConninfo("host=replica dbname=koji", "s3cr'et") ==
          "dbname='koji' host='replica' password='s3cr\\'et' application_name='koji_exporter' "
          "connect_timeout='10'" + kKeepalives);
  }

  TEST_CASE("url dsn is converted and keeps its own settings") {
    CHECK(BuildConninfo("postgresql://exporter@replica:6432/koji?application_name=x", "") ==
          "user='exporter' dbname='koji' host='replica' port='6432' application_name='x' "
          "connect_timeout='10'" + kKeepalives);
  }

  TEST_CASE("a password file overrides the dsn's password") {
    CHECK(BuildConninfo("host=h password=old", "new") ==
          "host='h' password='new' application_name='koji_exporter' connect_timeout='10'" +
              kKeepalives);
  }

  TEST_CASE("redaction hides the password in both forms") {
    CHECK(RedactConninfo("host=h password=hunter2") == "password='********' host='h'");
    const std::string url = RedactConninfo("postgresql://u:hunter2@h/koji");
    CHECK(url.find("hunter2") == std::string::npos);
    CHECK(url.find("password='********'") != std::string::npos);
  }

  TEST_CASE("an invalid dsn never echoes its password") {
    CHECK(RedactConninfo("host=h password='hunter2") == "(invalid dsn)");
    try {
      BuildConninfo("host=h password='hunter2", "");
      FAIL("expected ConninfoError");
    } catch (const ConninfoError& error) {
      CHECK(std::string(error.what()).find("hunter2") == std::string::npos);
    }
    CHECK_THROWS_WITH_AS(BuildConninfo("hostx", ""),
                         "invalid database dsn: missing \"=\" after \"hostx\" in connection "
                         "info string",
                         ConninfoError);
  }

  TEST_CASE("password files give their first line") {
    const std::string path = "/tmp/koji_exporter_password_test";
    std::ofstream(path) << "hunter2\r\nsecond line\n";
    CHECK(ReadPasswordFile(path) == "hunter2");
    std::remove(path.c_str());
    CHECK_THROWS_WITH(ReadPasswordFile(path),
                      "cannot read password file \"/tmp/koji_exporter_password_test\": No such "
                      "file or directory");
  }
}

}  // namespace koji_exporter
