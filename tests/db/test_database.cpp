// Creates and drops the per-test databases and runs rules for the database suites.
#include "db/test_database.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "koji_exporter/incremental_rule.hpp"
#include "koji_exporter/query_runner.hpp"
#include "koji_exporter/row_mapper.hpp"
#include "koji_exporter/rule_loader.hpp"

namespace koji_exporter::testing {
namespace {

// Connects to the maintenance database of the server the PG* variables name.
std::string MaintenanceConninfo() { return "dbname=postgres application_name=koji_exporter_tests"; }

std::string RandomName() {
  std::random_device device;
  std::mt19937_64 generator(device() ^ static_cast<std::uint64_t>(
                                           std::chrono::steady_clock::now().time_since_epoch().count()));
  return fmt::format("koji_exporter_test_{:016x}", generator());
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error(fmt::format("cannot read \"{}\"", path));
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

std::string SampleKey(const prometheus::MetricFamily& family,
                      const prometheus::ClientMetric& sample) {
  auto labels = sample.label;
  std::sort(labels.begin(), labels.end());
  if (labels.empty()) return family.name;
  std::string key = family.name + "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) key += ',';
    key += fmt::format("{}=\"{}\"", labels[i].name, labels[i].value);
  }
  return key + "}";
}

// Runs one SQL file of the repository in `database` with psql, not libpqxx, so that the
// file may use psql variables and meta-commands. `psql_options` go before the file.
void LoadSqlFile(const std::string& database, const std::string& file,
                 const std::string& psql_options) {
  const std::string command =
      fmt::format("psql -X -q -v ON_ERROR_STOP=1 {} -d {} -f '{}' > /dev/null", psql_options,
                  database, SourcePath(file));
  if (std::system(command.c_str()) != 0) {
    throw std::runtime_error(
        fmt::format("loading \"{}\" into {} failed (see psql's message above)", file, database));
  }
}

}  // namespace

std::string SourcePath(const std::string& relative) {
  return std::string(KOJI_EXPORTER_SOURCE_DIR) + "/" + relative;
}

TestDatabase::TestDatabase(const std::vector<std::string>& sql_files) : name_(RandomName()) {
  {
    pqxx::connection admin(MaintenanceConninfo());
    pqxx::nontransaction transaction(admin);
    transaction.exec0(fmt::format("CREATE DATABASE {}", name_));
  }
  for (const auto& file : sql_files) LoadSqlFile(name_, file, "");
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection admin(MaintenanceConninfo());
    pqxx::nontransaction transaction(admin);
    transaction.exec0(fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", name_));
  } catch (const std::exception&) {
    // The server may already be gone at the end of a run; a leftover test database in a
    // throwaway cluster does no harm.
  }
}

std::string TestDatabase::Conninfo() const { return fmt::format("dbname={}", name_); }

void TestDatabase::ApplyExporterRole() const {
  // Two runs of the file at once fail ("duplicate key" on CREATE ROLE, "tuple concurrently
  // updated" on ALTER ROLE). Advisory locks are per database, so every test process takes
  // this one in the maintenance database; it is released when `lock_holder` closes.
  pqxx::connection lock_holder(MaintenanceConninfo());
  pqxx::nontransaction transaction(lock_holder);
  transaction.exec("SELECT pg_advisory_lock(hashtext('koji_exporter tests: exporter role'))");
  LoadSqlFile(name_, "deploy/sql/koji_exporter_role.sql", "-v connection_limit=-1");
}

std::string TestDatabase::ExporterConninfo() const {
  return fmt::format("dbname={} user=koji_exporter application_name=koji_exporter_tests", name_);
}

void TestDatabase::Execute(const std::string& sql) const {
  pqxx::connection connection(Conninfo());
  pqxx::work transaction(connection);
  transaction.exec(sql);
  transaction.commit();
}

std::string TestDatabase::QueryValue(const std::string& sql) const {
  pqxx::connection connection(Conninfo());
  pqxx::work transaction(connection);
  const pqxx::result rows = transaction.exec(sql);
  if (rows.empty() || rows[0][0].is_null()) return "";
  return rows[0][0].c_str();
}

std::map<std::string, double> CollectSamples(const std::string& conninfo,
                                             const std::vector<std::string>& rule_files) {
  std::map<std::string, double> samples;
  QueryRunner runner(conninfo);
  for (const auto& file : rule_files) {
    const std::vector<Rule> rules = ParseRuleFile(ReadFile(SourcePath(file)), file, RuleDefaults{});
    for (const auto& rule : rules) {
      // A fresh state makes an incremental rule sum the whole table, as at startup.
      IncrementalState state;
      const MappedResult mapped = MapRows(rule, RunRule(runner, rule, &state));
      if (mapped.problems.Any()) {
        throw std::runtime_error(
            fmt::format("rule \"{}\" returned odd values: {}", rule.name, mapped.first_problem));
      }
      for (const auto& family : mapped.families) {
        for (const auto& sample : family.metric) {
          const double value = family.type == prometheus::MetricType::Counter
                                   ? sample.counter.value
                                   : sample.gauge.value;
          samples[SampleKey(family, sample)] = value;
        }
      }
    }
  }
  return samples;
}

}  // namespace koji_exporter::testing
