// The exporter, Prometheus' rules and the Grafana dashboards end to end. The exporter runs
// the default rules against the sample Koji database, and a real Prometheus scrapes it and
// evaluates deploy/prometheus/alerts.yaml and recording.yaml. Every query of
// deploy/grafana/dashboards then runs against that Prometheus.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>
#include <yaml-cpp/yaml.h>

#include "db/exporter_process.hpp"
#include "db/prometheus_process.hpp"
#include "db/test_database.hpp"

namespace koji_exporter {
namespace {

using testing::Alert;
using testing::ExporterProcess;
using testing::JsonMember;
using testing::JsonString;
using testing::JsonStringOr;
using testing::PrometheusOptions;
using testing::PrometheusProcess;
using testing::QueryResult;
using testing::SourcePath;
using testing::TempDir;
using testing::TestDatabase;

constexpr const char* kJob = "koji";
// Every wait polls up to kAttempts times, kPause apart: 60 s at most.
constexpr int kAttempts = 120;
constexpr auto kPause = std::chrono::milliseconds(500);

// Builders of tests/fixtures/koji_sample_data.sql.
constexpr const char* kHealthy = "builder-01.example.org";     // enabled, ready, load 3 of 8
constexpr const char* kOverloaded = "builder-02.example.org";  // enabled, capacity 4
constexpr const char* kDisabled = "builder-03.example.org";    // disabled
constexpr const char* kNeverStarted = "builder-04.example.org";  // enabled, capacity 3
constexpr const char* kBigmem = "bigmem-01.example.org";       // enabled, ready, capacity 16

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error(fmt::format("cannot read \"{}\"", path.string()));
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Sets the value of every line "KEY: VALUE" of a YAML text to `value`. The indentation
// stays and a trailing comment goes. Returns how many lines changed.
int RewriteKey(std::string& text, const std::string& key, const std::string& value) {
  const std::regex line_pattern("^(\\s*)" + key + ":\\s*[^\\s#]+\\s*(#.*)?$");
  std::istringstream lines(text);
  std::string rewritten;
  int changed = 0;
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    if (std::regex_match(line, match, line_pattern)) {
      line = match[1].str() + key + ": " + value;
      ++changed;
    }
    rewritten += line + '\n';
  }
  text = rewritten;
  return changed;
}

// Test copy of deploy/prometheus/alerts.yaml whose alerts fire at the first evaluation
// where their expression holds: every `for:` becomes 0s, so the test need not wait up to
// 30 minutes. The expressions are those of the file, unchanged.
std::string FastAlerts() {
  std::string text = ReadFile(SourcePath("deploy/prometheus/alerts.yaml"));
  if (RewriteKey(text, "for", "0s") == 0) {
    throw std::runtime_error("deploy/prometheus/alerts.yaml has no \"for:\" line to rewrite");
  }
  return text;
}

// Test copy of deploy/prometheus/recording.yaml whose groups all follow the global 1s
// evaluation interval, so that the daily ratios, evaluated every 5m in the file, appear
// within seconds. The expressions are those of the file, unchanged.
std::string FastRecordingRules() {
  std::string text = ReadFile(SourcePath("deploy/prometheus/recording.yaml"));
  RewriteKey(text, "interval", "1s");
  return text;
}

// Test copies of queries/*.yaml in `directory`/rules, with every rule run each second
// instead of every 15s to 5m, so that a change to the database reaches Prometheus within
// seconds. The SQL and the metrics are those of the files, unchanged.
void WriteFastRules(const TempDir& directory) {
  for (const auto& entry : std::filesystem::directory_iterator(SourcePath("queries"))) {
    if (entry.path().extension() != ".yaml") continue;
    std::string text = ReadFile(entry.path());
    RewriteKey(text, "interval", "1s");
    RewriteKey(text, "timeout", "900ms");
    directory.Write("rules/" + entry.path().filename().string(), text);
  }
}

// Counts the lines of a /metrics body that start with `prefix`.
int CountLines(const std::string& metrics, const std::string& prefix) {
  int count = 0;
  for (auto at = metrics.find("\n" + prefix); at != std::string::npos;
       at = metrics.find("\n" + prefix, at + 1)) {
    ++count;
  }
  return count;
}

// Calls `step` up to kAttempts times, kPause apart, until it returns true. Returns whether
// it did.
template <typename Step>
bool PollUntil(Step step) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (step()) return true;
    std::this_thread::sleep_for(kPause);
  }
  return false;
}

// The sample Koji database read by the exporter with the default rules, and Prometheus
// scraping the exporter with the alerting and recording rules. PollHub() does what the
// builders' kojid does on every poll of the hub: it sets host.update_time.
class Pipeline {
 public:
  Pipeline()
      : database_({"tests/fixtures/koji_schema.sql", "tests/fixtures/koji_sample_data.sql"}) {
    polling_hosts_ = {kHealthy, kOverloaded, kDisabled, kBigmem};
    PollHub();

    WriteFastRules(directory_);
    const std::string config = directory_.Write(
        "koji_exporter.yaml",
        fmt::format("database:\n  dsn: \"{}\"\nrule_files: [\"{}/rules/*.yaml\"]\n"
                    "defaults:\n  interval: 1s\n  timeout: 900ms\n",
                    database_.Conninfo(), directory_.path()));
    exporter_ = std::make_unique<ExporterProcess>(config);
    WaitForEveryRule();

    PrometheusOptions options;
    options.target = target();
    options.job = kJob;
    options.rule_files = {directory_.Write("alerts.yaml", FastAlerts()),
                          directory_.Write("recording.yaml", FastRecordingRules())};
    prometheus_ = std::make_unique<PrometheusProcess>(options);
  }

  const TestDatabase& database() const { return database_; }
  const PrometheusProcess& prometheus() const { return *prometheus_; }
  /// The exporter's address, which is the `instance` label of its series.
  std::string target() const { return fmt::format("127.0.0.1:{}", exporter_->port()); }

  /// Sets update_time to now for the builders that still poll the hub.
  void PollHub() const {
    std::string names;
    for (const auto& host : polling_hosts_) names += (names.empty() ? "'" : ", '") + host + "'";
    database_.Execute(
        fmt::format("UPDATE host SET update_time = now() WHERE name IN ({})", names));
  }

  /// Makes `host` stop polling: its last poll was a day ago.
  void Silence(const std::string& host) {
    polling_hosts_.erase(host);
    database_.Execute(fmt::format(
        "UPDATE host SET update_time = now() - interval '1 day' WHERE name = '{}'", host));
  }

  /// Finishes twelve more tasks like task 8, a buildArch task of the default channel:
  /// ten fail and two succeed. They copy its request too, so that they count in its
  /// series whatever labels the rule derives from the request: increase() and rate()
  /// ignore the first value of a new series.
  void FinishTasks() const {
    database_.Execute(R"(
      INSERT INTO task (state, create_time, start_time, completion_time, channel_id, host_id,
                        owner, method, arch, priority, weight, request)
      SELECT CASE WHEN n <= 10 THEN 5 ELSE 2 END, now() - interval '10 minutes',
             now() - interval '9 minutes', now(), t.channel_id, t.host_id, t.owner, t.method,
             t.arch, t.priority, t.weight, t.request
      FROM task t, generate_series(1, 12) AS n
      WHERE t.id = 8)");
  }

 private:
  // Waits until every rule has succeeded once, so that Prometheus' first scrape already
  // has every series. Otherwise an alert built on two rules' metrics, such as
  // KojiBuilderNotReady, could fire at once for a builder whose capacity is not read yet.
  void WaitForEveryRule() const {
    std::string metrics;
    const bool complete = PollUntil([&] {
      metrics = exporter_->Get("/metrics");
      const int rules = CountLines(metrics, "koji_exporter_query_runs_total{");
      return rules > 0 &&
             CountLines(metrics, "koji_exporter_query_last_success_timestamp_seconds{") == rules;
    });
    if (!complete) {
      throw std::runtime_error("the exporter's rules did not all succeed:\n" + metrics +
                               exporter_->Log());
    }
  }

  TestDatabase database_;
  TempDir directory_;
  std::set<std::string> polling_hosts_;
  std::unique_ptr<ExporterProcess> exporter_;
  std::unique_ptr<PrometheusProcess> prometheus_;
};

// Returns one "NAME LABEL=VALUE ... STATE" line per alert, for test messages.
std::string Describe(const std::vector<Alert>& alerts) {
  std::string text;
  for (const auto& alert : alerts) {
    text += alert.labels.at("alertname");
    for (const char* label : {"host", "method", "channel", "query"}) {
      const auto found = alert.labels.find(label);
      if (found != alert.labels.end()) text += fmt::format(" {}={}", label, found->second);
    }
    text += " " + alert.state + "\n";
  }
  return text;
}

// An alert picked by its name and one label.
struct AlertKey {
  std::string name;
  std::string label;
  std::string value;
};

std::string ToString(const AlertKey& key) {
  return fmt::format("{}{{{}=\"{}\"}}", key.name, key.label, key.value);
}

// Returns the state of the alert `key` names: "pending", "firing", or "" when inactive.
std::string StateOf(const std::vector<Alert>& alerts, const AlertKey& key) {
  for (const auto& alert : alerts) {
    const auto label = alert.labels.find(key.label);
    if (alert.labels.at("alertname") == key.name && label != alert.labels.end() &&
        label->second == key.value) {
      return alert.state;
    }
  }
  return "";
}

// Polls /api/v1/alerts, with the hub polled in between, until every alert of `expected`
// fires. Fails the test for each alert of `forbidden` seen active on any poll, and for
// each expected alert that never fired.
void ExpectAlerts(const Pipeline& pipeline, const std::vector<AlertKey>& expected,
                  const std::vector<AlertKey>& forbidden) {
  std::vector<Alert> alerts;
  std::set<std::string> seen_forbidden;
  PollUntil([&] {
    pipeline.PollHub();
    alerts = pipeline.prometheus().Alerts();
    for (const auto& key : forbidden) {
      if (!StateOf(alerts, key).empty()) seen_forbidden.insert(ToString(key));
    }
    for (const auto& key : expected) {
      if (StateOf(alerts, key) != "firing") return false;
    }
    return true;
  });

  CAPTURE(Describe(alerts));
  for (const auto& key : expected) {
    CAPTURE(ToString(key));
    CHECK(StateOf(alerts, key) == "firing");
  }
  for (const auto& key : forbidden) {
    CAPTURE(ToString(key));
    CHECK(seen_forbidden.count(ToString(key)) == 0);
  }
}

// ---------------------------------------------------------------------------------------
// Dashboard queries

// Metrics that only a replica has: on the primary of the tests they are absent, so a
// query on them may return no data, but it must still be valid.
const std::set<std::string> kAbsentOnPrimary = {
    "koji_database_replica_lag_seconds", "koji_database_replica_last_replay_timestamp_seconds"};

// One PromQL query of a dashboard, with Grafana's variables replaced by test values.
struct DashboardQuery {
  std::string dashboard;  // file name
  std::string panel;      // panel title, or "variable NAME"
  std::string expression;  // as in the file
  std::string promql;      // ready for Prometheus
};

std::string ToString(const DashboardQuery& query) {
  return fmt::format("{}: \"{}\": {}", query.dashboard, query.panel, query.promql);
}

// Values of Grafana's built-in variables. The test runs instant queries in place of the
// panels' time ranges, so the ranges need only span a few scrapes of 1s.
const std::map<std::string, std::string> kBuiltinVariables = {
    {"__range", "1h"},         {"__range_s", "3600"},   {"__range_ms", "3600000"},
    {"__rate_interval", "10s"}, {"__interval", "5s"}, {"__interval_ms", "5000"},
};

// Replaces $name, ${name}, ${name:format} and [[name]] by `values`. Throws
// std::runtime_error naming the first variable without a value.
std::string Substitute(const std::string& expression,
                       const std::map<std::string, std::string>& values) {
  static const std::regex variable(R"(\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\])");
  std::string result;
  auto rest = expression.cbegin();
  for (std::sregex_iterator match(expression.begin(), expression.end(), variable), end;
       match != end; ++match) {
    const std::string name = (*match)[1].matched   ? (*match)[1].str()
                             : (*match)[2].matched ? (*match)[2].str()
                                                   : (*match)[3].str();
    const auto value = values.find(name);
    if (value == values.end()) throw std::runtime_error("no test value for $" + name);
    result.append(rest, (*match)[0].first);
    result += value->second;
    rest = (*match)[0].second;
  }
  result.append(rest, expression.cend());
  return result;
}

// Returns the test value of each variable of `dashboard`: the job and exporter under
// test for `job` and `instance`, the "All" value for the others, and Grafana's built-ins.
std::map<std::string, std::string> VariableValues(const YAML::Node& dashboard,
                                                  const std::string& instance) {
  std::map<std::string, std::string> values = kBuiltinVariables;
  for (const auto& variable : JsonMember(JsonMember(dashboard, "templating"), "list")) {
    const std::string name = JsonString(JsonMember(variable, "name"));
    if (variable["allValue"]) values[name] = JsonString(variable["allValue"]);
  }
  values["job"] = kJob;
  values["instance"] = instance;
  return values;
}

// Collects the queries of every panel (rows included) and of every query variable, whose
// label_values(SELECTOR, LABEL) becomes count by (LABEL) (SELECTOR). Checks on the way
// that the dashboard's data source is its `datasource` variable.
void CollectQueries(const std::string& file, const YAML::Node& dashboard,
                    const std::string& instance, std::vector<DashboardQuery>& queries) {
  const auto values = VariableValues(dashboard, instance);
  const auto add = [&](const std::string& panel, const std::string& expression) {
    CAPTURE(file);
    CAPTURE(panel);
    CAPTURE(expression);
    std::string promql;
    CHECK_NOTHROW(promql = Substitute(expression, values));
    if (!promql.empty()) queries.push_back({file, panel, expression, promql});
  };

  static const std::regex label_values(R"(^label_values\((.+),\s*(\w+)\)$)");
  for (const auto& variable : JsonMember(JsonMember(dashboard, "templating"), "list")) {
    if (JsonMember(variable, "type").Scalar() != "query") continue;
    const YAML::Node query = JsonMember(variable, "query");
    const std::string text =
        query.IsMap() ? JsonString(JsonMember(query, "query")) : JsonString(query);
    std::smatch match;
    CAPTURE(file);
    CAPTURE(text);
    REQUIRE(std::regex_match(text, match, label_values));
    add("variable " + JsonString(JsonMember(variable, "name")),
        fmt::format("count by ({}) ({})", match[2].str(), match[1].str()));
  }

  // Copying a YAML::Node copies a reference to the parsed panel, not the panel.
  std::vector<YAML::Node> panels;
  for (const auto& panel : JsonMember(dashboard, "panels")) panels.push_back(panel);
  while (!panels.empty()) {
    const YAML::Node panel = panels.back();
    panels.pop_back();
    for (const auto& nested : panel["panels"]) panels.push_back(nested);
    if (JsonStringOr(panel, "type", "") == "row") continue;

    const std::string title = JsonStringOr(panel, "title", "(untitled)");
    CAPTURE(file);
    CAPTURE(title);
    CHECK(JsonMember(JsonMember(panel, "datasource"), "uid").Scalar() == "${datasource}");
    const YAML::Node targets = panel["targets"];
    const std::size_t target_count = targets ? targets.size() : 0;
    CHECK(target_count > 0);
    for (const auto& target : targets) add(title, JsonString(JsonMember(target, "expr")));
  }
}

// Checks that `text` is valid JSON, because YAML::Load also accepts YAML that Grafana
// rejects, such as comments or trailing commas. PostgreSQL's json input is strict. Throws
// pqxx::data_exception with the line of the first error.
void CheckJsonSyntax(const TestDatabase& database, const std::string& text) {
  pqxx::connection connection(database.Conninfo());
  pqxx::nontransaction transaction(connection);
  transaction.exec_params("SELECT $1::json", text);
}

// Returns whether `promql` reads a metric that the primary of the tests does not have.
bool ReadsReplicaOnlyMetric(const std::string& promql) {
  for (const auto& metric : kAbsentOnPrimary) {
    if (promql.find(metric) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_SUITE("prometheus end to end") {
  TEST_CASE("prometheus receives the exporter's series") {
    Pipeline pipeline;

    // Values worked out from tests/fixtures/koji_sample_data.sql. The sums hide labels
    // that the task metrics may gain.
    const std::vector<std::pair<std::string, double>> expected = {
        {"up{job=\"koji\"}", 1},
        {"sum(koji_hosts_enabled)", 4},
        {"sum(koji_hosts_ready)", 3},
        {"koji_hosts_capacity{host=\"builder-01.example.org\"}", 8},
        {"koji_task_load{host=\"bigmem-01.example.org\"}", 12.25},
        {"count(koji_builders_update)", 4},
        {"koji_enabled_hosts_count{channel=\"bigmem\"}", 2},
        {"sum(koji_waiting_tasks)", 9},
        {"sum(koji_in_progress_tasks)", 9},
        {"sum(koji_tasks_total)", 45},
        {"sum(koji_task_errors_total)", 5},
        {"koji_oldest_waiting_task_create_timestamp_seconds{channel=\"maven\"}", 1751356800},
        {"channel:koji_task_load:ratio_capacity{channel=\"bigmem\"}", 0.8375},
        {"min(koji_exporter_query_last_run_success)", 1},
        {"koji_exporter_database_up", 1},
    };
    const auto matches = [&](const std::pair<std::string, double>& item) {
      const QueryResult result = pipeline.prometheus().Query(item.first);
      return result.error.empty() && result.samples.size() == 1 &&
             result.samples[0].value == doctest::Approx(item.second);
    };
    PollUntil([&] {
      for (const auto& item : expected) {
        if (!matches(item)) return false;
      }
      return true;
    });

    for (const auto& [expression, value] : expected) {
      CAPTURE(expression);
      const QueryResult result = pipeline.prometheus().Query(expression);
      CHECK(result.error == "");
      REQUIRE(result.samples.size() == 1);
      CHECK(result.samples[0].value == doctest::Approx(value));
    }
  }

  TEST_CASE("prometheus fires the builder alerts") {
    Pipeline pipeline;
    // The overloaded builder is over its capacity of 4, so it reports not ready. The
    // never-started one is enabled, below its capacity of 3, and not ready.
    pipeline.database().Execute(fmt::format(
        "UPDATE host SET task_load = 6.0, ready = FALSE WHERE name = '{}';"
        "UPDATE host SET task_load = 0.0, ready = FALSE WHERE name = '{}'",
        kOverloaded, kNeverStarted));

    // The exporter stays healthy throughout, and KojiBuilderNotReady leaves out a builder
    // at or over its capacity.
    const std::vector<AlertKey> never = {
        {"KojiExporterDown", "job", kJob},
        {"KojiExporterDatabaseDown", "job", kJob},
        {"KojiExporterRuleFailing", "job", kJob},
        {"KojiBuilderNotReady", "host", kOverloaded},
        {"KojiBuilderSilent", "host", kHealthy},
    };
    std::vector<AlertKey> forbidden = never;
    forbidden.push_back({"KojiBuilderSilent", "host", kBigmem});
    ExpectAlerts(pipeline,
                 {{"KojiBuilderAtCapacity", "host", kOverloaded},
                  {"KojiBuilderNotReady", "host", kNeverStarted},
                  {"KojiDisabledBuilderPolling", "host", kDisabled}},
                 forbidden);

    // bigmem-01 stops polling, and most buildArch tasks of the last hour fail.
    pipeline.Silence(kBigmem);
    pipeline.FinishTasks();
    ExpectAlerts(pipeline,
                 {{"KojiBuilderSilent", "host", kBigmem},
                  {"KojiTaskFailureRatioHigh", "method", "buildArch"},
                  {"KojiBuilderAtCapacity", "host", kOverloaded},
                  {"KojiBuilderNotReady", "host", kNeverStarted}},
                 never);
  }

  TEST_CASE("prometheus answers every dashboard query") {
    Pipeline pipeline;
    // The ratio panels need tasks that finish while Prometheus watches, so wait for a
    // first scrape of the task counters before finishing some.
    PollUntil([&] { return !pipeline.prometheus().Query("koji_tasks_total").samples.empty(); });
    pipeline.FinishTasks();

    std::vector<DashboardQuery> queries;
    std::set<std::string> uids;
    const auto directory = std::filesystem::path(SourcePath("deploy/grafana/dashboards"));
    for (const auto& entry : std::filesystem::directory_iterator(directory)) {
      if (entry.path().extension() != ".json") continue;
      const std::string file = entry.path().filename().string();
      CAPTURE(file);
      const std::string text = ReadFile(entry.path());
      CheckJsonSyntax(pipeline.database(), text);
      const YAML::Node dashboard = YAML::Load(text);
      const std::string uid = JsonStringOr(dashboard, "uid", "");
      CHECK(!uid.empty());
      CHECK(uids.insert(uid).second);
      CollectQueries(file, dashboard, pipeline.target(), queries);
    }
    CHECK(uids.size() >= 2);

    // A query error is final. An empty result may fill as rules run and Prometheus
    // evaluates, so empty queries are retried.
    std::map<std::string, std::string> errors;  // ToString(query) -> error
    std::vector<DashboardQuery> pending;
    for (const auto& query : queries) {
      const QueryResult result = pipeline.prometheus().Query(query.promql);
      if (!result.error.empty()) {
        errors[ToString(query)] = result.error;
      } else if (result.samples.empty() && !ReadsReplicaOnlyMetric(query.promql)) {
        pending.push_back(query);
      }
    }
    PollUntil([&] {
      std::vector<DashboardQuery> still_empty;
      for (const auto& query : pending) {
        if (pipeline.prometheus().Query(query.promql).samples.empty()) {
          still_empty.push_back(query);
        }
      }
      pending = still_empty;
      return pending.empty();
    });

    MESSAGE(fmt::format("{} dashboard queries run", queries.size()));
    for (const auto& [query, error] : errors) {
      FAIL_CHECK(fmt::format("query failed: {}: {}", query, error));
    }
    for (const auto& query : pending) {
      FAIL_CHECK(fmt::format("query returned no data: {}", ToString(query)));
    }
  }
}

}  // namespace koji_exporter
