// The default rules (queries/*.yaml) against the hand-checked Koji sample data: the exact
// value of every series, no other series, and how the values follow changes made the way
// the hub makes them. The inheritance walk of koji_builds_per_tag is also compared with a
// model of the hub's own walk on random tag graphs.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "db/test_database.hpp"
#include "koji_exporter/incremental_rule.hpp"
#include "koji_exporter/query_runner.hpp"
#include "koji_exporter/rule_loader.hpp"

namespace koji_exporter {
namespace {

using testing::CollectSamples;
using testing::TestDatabase;

using Samples = std::map<std::string, double>;
using Labels = std::vector<std::pair<std::string, std::string>>;

const std::vector<std::string> kFixtures = {"tests/fixtures/koji_schema.sql",
                                            "tests/fixtures/koji_sample_data.sql"};
const std::vector<std::string> kRuleFiles = {"queries/hosts.yaml", "queries/channels.yaml",
                                             "queries/tasks.yaml", "queries/tags.yaml",
                                             "queries/builds.yaml", "queries/replica.yaml",
                                             "queries/task_waits.yaml"};

// The sample data, which the role of deploy/sql/koji_exporter_role.sql may read through
// that file's grants only. The SELECT that Koji's schema grants to PUBLIC on some tables is
// taken away, so a rule that reads a table the file does not grant fails in these tests.
class SampleDatabase : public TestDatabase {
 public:
  SampleDatabase() : TestDatabase(kFixtures) {
    Execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC");
    ApplyExporterRole();
  }
};

// Every metric family the default rules export.
const std::set<std::string> kDefaultMetrics = {
    "koji_builders_update",
    "koji_hosts_enabled",
    "koji_hosts_ready",
    "koji_hosts_capacity",
    "koji_task_load",
    "koji_channel_enabled",
    "koji_enabled_hosts_count",
    "koji_ready_hosts_per_channel",
    "koji_enabled_hosts_capacity_per_channel",
    "koji_enabled_hosts_task_load_per_channel",
    "koji_waiting_tasks",
    "koji_in_progress_tasks",
    "koji_tasks_total",
    "koji_task_completions_total",
    "koji_task_succeed_total",
    "koji_task_errors_total",
    "koji_oldest_waiting_task_create_timestamp_seconds",
    "koji_packages_per_tag",
    "koji_builds_per_tag",
    "koji_builds_per_package",
};

// Builds the sample key that CollectSamples uses: labels sorted by name, no braces without
// labels.
std::string Series(const std::string& metric, Labels labels) {
  if (labels.empty()) return metric;
  std::sort(labels.begin(), labels.end());
  std::string key = metric + "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) key += ',';
    key += fmt::format("{}=\"{}\"", labels[i].first, labels[i].second);
  }
  return key + "}";
}

std::string Host(const std::string& metric, const std::string& short_name) {
  return Series(metric, {{"host", short_name + ".example.org"}});
}

std::string Channel(const std::string& metric, const std::string& channel) {
  return Series(metric, {{"channel", channel}});
}

std::string Tag(const std::string& metric, const std::string& tag) {
  return Series(metric, {{"tag", tag}});
}

std::string Family(const std::string& key) { return key.substr(0, key.find('{')); }

Samples SamplesOf(const Samples& all, const std::string& metric) {
  Samples family;
  for (const auto& [key, value] : all) {
    if (Family(key) == metric) family.emplace(key, value);
  }
  return family;
}

std::set<std::string> KeysOf(const Samples& samples) {
  std::set<std::string> keys;
  for (const auto& entry : samples) keys.insert(entry.first);
  return keys;
}

// Checks that `metric` has exactly the expected series, each with exactly its value.
// Every expected value in this file is a small integer, a sum of quarters or a Unix time
// with a quarter second, so exact comparison of doubles is safe.
void CheckMetric(const Samples& all, const std::string& metric, const Samples& expected) {
  CAPTURE(metric);
  const Samples actual = SamplesOf(all, metric);
  CHECK(KeysOf(actual) == KeysOf(expected));
  for (const auto& [key, value] : expected) {
    CAPTURE(key);
    const auto found = actual.find(key);
    if (found == actual.end()) continue;  // already reported by the key comparison
    CHECK(found->second == value);
  }
}

// One channel's five host metrics.
struct ChannelHosts {
  std::string channel;
  double channel_enabled;
  double enabled_hosts;
  double ready_hosts;
  double capacity;
  double task_load;
};

void CheckChannels(const Samples& all, const std::vector<ChannelHosts>& rows) {
  Samples enabled, hosts, ready, capacity, load;
  for (const auto& row : rows) {
    enabled[Channel("koji_channel_enabled", row.channel)] = row.channel_enabled;
    hosts[Channel("koji_enabled_hosts_count", row.channel)] = row.enabled_hosts;
    ready[Channel("koji_ready_hosts_per_channel", row.channel)] = row.ready_hosts;
    capacity[Channel("koji_enabled_hosts_capacity_per_channel", row.channel)] = row.capacity;
    load[Channel("koji_enabled_hosts_task_load_per_channel", row.channel)] = row.task_load;
  }
  CheckMetric(all, "koji_channel_enabled", enabled);
  CheckMetric(all, "koji_enabled_hosts_count", hosts);
  CheckMetric(all, "koji_ready_hosts_per_channel", ready);
  CheckMetric(all, "koji_enabled_hosts_capacity_per_channel", capacity);
  CheckMetric(all, "koji_enabled_hosts_task_load_per_channel", load);
}

// One channel and method's six task metrics.
struct TaskCounts {
  std::string channel;
  std::string method;
  std::string tag;
  double waiting;
  double in_progress;
  double total;
  double completions;
  double succeeded;
  double errors;
};

void CheckTasks(const Samples& all, const std::vector<TaskCounts>& rows) {
  Samples waiting, in_progress, total, completions, succeeded, errors;
  for (const auto& row : rows) {
    const Labels labels = {{"channel", row.channel}, {"method", row.method}, {"tag", row.tag}};
    waiting[Series("koji_waiting_tasks", labels)] = row.waiting;
    in_progress[Series("koji_in_progress_tasks", labels)] = row.in_progress;
    total[Series("koji_tasks_total", labels)] = row.total;
    completions[Series("koji_task_completions_total", labels)] = row.completions;
    succeeded[Series("koji_task_succeed_total", labels)] = row.succeeded;
    errors[Series("koji_task_errors_total", labels)] = row.errors;
  }
  CheckMetric(all, "koji_waiting_tasks", waiting);
  CheckMetric(all, "koji_in_progress_tasks", in_progress);
  CheckMetric(all, "koji_tasks_total", total);
  CheckMetric(all, "koji_task_completions_total", completions);
  CheckMetric(all, "koji_task_succeed_total", succeeded);
  CheckMetric(all, "koji_task_errors_total", errors);
}

// The channel metrics of the unchanged sample data.
const std::vector<ChannelHosts> kSampleChannels = {
    // default: builder-01 (capacity 8, load 3.0, ready) and builder-02 (capacity 4,
    // load 4.5, not ready); builder-03 is disabled and builder-05 has no active config.
    {"default", 1, 2, 1, 12, 7.5},
    // createrepo: builder-01 (8, 3.0, ready) and builder-04 (3, 0, not ready);
    // builder-02's membership is revoked.
    {"createrepo", 1, 2, 1, 11, 3},
    // bigmem: builder-02 (4, 4.5, not ready) and bigmem-01 (16, 12.25, ready).
    {"bigmem", 1, 2, 1, 20, 16.75},
    // retired is disabled but keeps its hosts: builder-04 (3, 0, not ready) counts,
    // builder-03 is disabled, bigmem-01's membership is revoked.
    {"retired", 0, 1, 0, 3, 0},
    // The channels Koji creates at install time that no sample host listens on.
    {"maven", 1, 0, 0, 0, 0},
    {"livecd", 1, 0, 0, 0, 0},
    {"appliance", 1, 0, 0, 0, 0},
    {"vm", 1, 0, 0, 0, 0},
    {"image", 1, 0, 0, 0, 0},
    {"livemedia", 1, 0, 0, 0, 0},
};

// The task metrics of the unchanged sample data: waiting (FREE + ASSIGNED), in progress
// (OPEN), total, completions (CLOSED + CANCELED + FAILED), succeeded (CLOSED), errors
// (FAILED). Task ids refer to koji_sample_data.sql.
const std::vector<TaskCounts> kSampleTasks = {
    // Tasks 1, 18 CLOSED; 6 FAILED; 10, 21 OPEN; 16 FREE; 17 ASSIGNED; all for the target
    // f42-candidate, whose destination is f42-updates-candidate.
    {"default", "build", "f42-updates-candidate", 2, 2, 7, 3, 2, 1},
    // Task 15 CANCELED; its request is not XML, so it has no tag.
    {"default", "build", "", 0, 0, 1, 1, 0, 0},
    // Tasks 3, 4, 20 CLOSED; 8 FAILED; 9 CANCELED; 12, 23, 24 OPEN; 14 FREE; 13 ASSIGNED;
    // build tag 6.
    {"default", "buildArch", "f42-build", 2, 3, 10, 5, 3, 1},
    // Tasks 2, 7, 11, 19, 22, all CLOSED; build tag 6.
    {"default", "buildSRPMFromSCM", "f42-build", 0, 0, 5, 5, 5, 0},
    // Task 5 CLOSED; tag 3.
    {"default", "tagBuild", "f42-updates-candidate", 0, 0, 1, 1, 1, 0},
    // Tasks 25, 27 (by name) CLOSED; 29 (by id) FAILED; 32 (struct) OPEN.
    {"createrepo", "newRepo", "f42-build", 0, 1, 4, 3, 2, 1},
    // Task 35 (struct) FREE.
    {"createrepo", "newRepo", "f42", 1, 0, 1, 0, 0, 0},
    // Tasks 26, 28 CLOSED; 30 FAILED; 31 CANCELED; 33 OPEN; 34 ASSIGNED.
    {"createrepo", "createrepo", "", 1, 1, 6, 4, 2, 1},
    // Task 36 CLOSED; 38 OPEN.
    {"bigmem", "build", "f42-updates-candidate", 0, 1, 2, 1, 1, 0},
    // Task 37 CLOSED; 39 OPEN; 40 FREE; the build tag by name.
    {"bigmem", "buildArch", "f42-build", 1, 1, 3, 1, 1, 0},
    // Task 41 CLOSED; 42 FAILED; 43 FREE in the disabled channel.
    {"retired", "runroot", "", 1, 0, 3, 2, 1, 1},
    // Task 44 FREE in a channel without hosts; 45 CANCELED, which is neither a success
    // nor an error.
    {"maven", "buildMaven", "", 1, 0, 2, 1, 0, 0},
};

// koji_builds_per_tag of the unchanged sample data.
Samples SampleBuildsPerTag() {
  return {
      // bash-5.2.26, coreutils-9.5, kernel-6.14.0, python3, zlib, gcc, legacy-tool,
      // copy-jdk-configs; nano is tagged but in no package list of f42.
      {Tag("koji_builds_per_tag", "f42"), 8},
      // bash-5.2.37 (inherited from f42) and nano (own list); legacy-tool is blocked in
      // f42-updates, which hides f42's listing.
      {Tag("koji_builds_per_tag", "f42-updates"), 2},
      // rust-serde (own listing beats f42's block) and ghost (in the list; its missing
      // owner does not matter for tagged builds); bash-5.2.37's listing here is revoked.
      {Tag("koji_builds_per_tag", "f42-updates-candidate"), 2},
      // firefox, listed in f42-extras, reached through the intransitive link from the
      // tag itself.
      {Tag("koji_builds_per_tag", "f42-override"), 1},
      // f42-extras has a package list but no tagged builds.
      {Tag("koji_builds_per_tag", "f42-extras"), 0},
      // Walk: f42-updates-candidate, f42-updates, f42, f42-override. gcc counts because
      // f42 lists it before f42-override blocks it (depth first); rust-serde counts from
      // the candidate. legacy-tool is blocked by f42-updates before f42 lists it. firefox
      // is not reached: the link from f42-override to f42-extras is intransitive and the
      // link from f42-build to f42-extras is revoked.
      {Tag("koji_builds_per_tag", "f42-build"), 2},
      // python3 only: the filter "py" must match from the first character, so
      // copy-jdk-configs and bash are not inherited from f42.
      {Tag("koji_builds_per_tag", "python-sig"), 1},
      // rust-serde (candidate) and nano (f42-updates, one level beyond the candidate);
      // coreutils is listed only in f42, beyond maxdepth 1 (the candidate's own link
      // with maxdepth 5 passes down min(5, 1) - 1 = 0).
      {Tag("koji_builds_per_tag", "sandbox"), 2},
      // A new tag in an inheritance loop with f42-extras, without builds.
      {Tag("koji_builds_per_tag", "f43"), 0},
  };
}

// koji_packages_per_tag of the unchanged sample data.
Samples SamplePackagesPerTag() {
  return {
      // bash, coreutils, kernel, python3, zlib, gcc, legacy-tool, copy-jdk-configs;
      // rust-serde is blocked and firefox's row is revoked.
      {Tag("koji_packages_per_tag", "f42"), 8},
      // nano; legacy-tool is blocked.
      {Tag("koji_packages_per_tag", "f42-updates"), 1},
      // rust-serde; ghost has no active owner row.
      {Tag("koji_packages_per_tag", "f42-updates-candidate"), 1},
      // Only a blocked gcc.
      {Tag("koji_packages_per_tag", "f42-override"), 0},
      // firefox.
      {Tag("koji_packages_per_tag", "f42-extras"), 1},
      // The next four have no package rows of their own; inherited ones do not count.
      {Tag("koji_packages_per_tag", "f42-build"), 0},
      {Tag("koji_packages_per_tag", "python-sig"), 0},
      {Tag("koji_packages_per_tag", "sandbox"), 0},
      {Tag("koji_packages_per_tag", "f43"), 0},
  };
}

// Runs every default rule once, connected as the exporter's role; all of them must
// succeed without NULLs or duplicates.
Samples CollectDefaults(const TestDatabase& database) {
  return CollectSamples(database.ExporterConninfo(), kRuleFiles);
}

}  // namespace

TEST_SUITE("default rules") {
  TEST_CASE("only documented metrics are exported") {
    SampleDatabase database;
    const Samples samples = CollectDefaults(database);

    std::set<std::string> families;
    for (const auto& entry : samples) families.insert(Family(entry.first));
    CHECK(families == kDefaultMetrics);
  }

  TEST_CASE("host metrics match listHosts") {
    SampleDatabase database;
    const Samples samples = CollectDefaults(database);

    // builder-05 has no active host_config row and appears in none of these.
    CheckMetric(samples, "koji_hosts_enabled",
                {
                    // builder-01's newest config row (capacity 8.0) is enabled.
                    {Host("koji_hosts_enabled", "builder-01"), 1},
                    {Host("koji_hosts_enabled", "builder-02"), 1},
                    // builder-03's newest config row has enabled FALSE.
                    {Host("koji_hosts_enabled", "builder-03"), 0},
                    {Host("koji_hosts_enabled", "builder-04"), 1},
                    {Host("koji_hosts_enabled", "bigmem-01"), 1},
                });
    CheckMetric(samples, "koji_hosts_ready",
                {
                    {Host("koji_hosts_ready", "builder-01"), 1},
                    // Over capacity: load 4.5 > capacity 4.0.
                    {Host("koji_hosts_ready", "builder-02"), 0},
                    // Disabled, but its kojid has not reported since.
                    {Host("koji_hosts_ready", "builder-03"), 1},
                    // Never started.
                    {Host("koji_hosts_ready", "builder-04"), 0},
                    {Host("koji_hosts_ready", "bigmem-01"), 1},
                });
    CheckMetric(samples, "koji_task_load",
                {
                    // Open tasks 12 and 33, weight 1.5 each.
                    {Host("koji_task_load", "builder-01"), 3.0},
                    // Open tasks 23 (3.0) and 24 (1.5).
                    {Host("koji_task_load", "builder-02"), 4.5},
                    {Host("koji_task_load", "builder-03"), 0},
                    {Host("koji_task_load", "builder-04"), 0},
                    // Open task 39.
                    {Host("koji_task_load", "bigmem-01"), 12.25},
                });
    CheckMetric(samples, "koji_hosts_capacity",
                {
                    // Raised from 4.0 to 8.0 by a new config row.
                    {Host("koji_hosts_capacity", "builder-01"), 8},
                    {Host("koji_hosts_capacity", "builder-02"), 4},
                    // builder-03 is disabled, so it has no capacity series.
                    {Host("koji_hosts_capacity", "builder-04"), 3},
                    {Host("koji_hosts_capacity", "bigmem-01"), 16},
                });
    const auto update = [](const std::string& host, const char* enabled, const char* ready) {
      return Series("koji_builders_update",
                    {{"host", host + ".example.org"}, {"enabled", enabled}, {"ready", ready}});
    };
    // builder-04 never polled (update_time NULL), so it has no series.
    CheckMetric(samples, "koji_builders_update",
                {
                    // 2025-07-01 12:00:00.25 UTC.
                    {update("builder-01", "true", "true"), 1751371200.25},
                    // 12:00:05 UTC.
                    {update("builder-02", "true", "false"), 1751371205},
                    // 11:59:50 UTC: a disabled host whose kojid still polls.
                    {update("builder-03", "false", "true"), 1751371190},
                    // 12:00:10 UTC.
                    {update("bigmem-01", "true", "true"), 1751371210},
                });
  }

  TEST_CASE("channel metrics count enabled hosts") {
    SampleDatabase database;
    CheckChannels(CollectDefaults(database), kSampleChannels);
  }

  TEST_CASE("task metrics count states per method") {
    SampleDatabase database;
    CheckTasks(CollectDefaults(database), kSampleTasks);
  }

  TEST_CASE("oldest waiting task per channel") {
    SampleDatabase database;
    const auto oldest = [](const std::string& channel) {
      return Channel("koji_oldest_waiting_task_create_timestamp_seconds", channel);
    };
    // The same value for every channel, found another way: the first task by create_time
    // among those no host has opened. An empty result means no series.
    const auto check_against_query = [&](const Samples& samples) {
      for (const ChannelHosts& row : kSampleChannels) {
        CAPTURE(row.channel);
        const std::string expected = database.QueryValue(fmt::format(
            "SELECT extract(epoch FROM t.create_time) FROM task t "
            "JOIN channels c ON c.id = t.channel_id "
            "WHERE c.name = '{}' AND t.state IN (0, 4) ORDER BY t.create_time LIMIT 1",
            row.channel));
        CAPTURE(expected);
        const auto found = samples.find(oldest(row.channel));
        if (expected.empty()) {
          CHECK(found == samples.end());
        } else {
          REQUIRE(found != samples.end());
          // doctest prints doubles with 6 digits, too few to tell Unix times apart.
          const std::string actual = fmt::format("{}", found->second);
          CAPTURE(actual);
          CHECK(found->second == std::stod(expected));
        }
      }
    };

    Samples samples = CollectDefaults(database);
    CheckMetric(samples, "koji_oldest_waiting_task_create_timestamp_seconds",
                {
                    // Tasks 13 (ASSIGNED) and 14 (FREE), 11:34:01 UTC. Tasks 16 and 17 are newer.
                    {oldest("default"), 1751369641},
                    // Task 34 (ASSIGNED), 11:50:06 UTC. Task 35 (FREE) is newer.
                    {oldest("createrepo"), 1751370606},
                    // Task 40 (FREE), 09:05:00 UTC.
                    {oldest("bigmem"), 1751360700},
                    // Task 43 (FREE) in the disabled channel, 10:00:00 UTC.
                    {oldest("retired"), 1751364000},
                    // Task 44 (FREE) in a channel without hosts, 08:00:00 UTC.
                    {oldest("maven"), 1751356800},
                });
    check_against_query(samples);

    // builder-01 opens tasks 13 and 14, so task 17 (ASSIGNED, 11:58:00 UTC) becomes the
    // oldest in default. Cancelling task 44 leaves maven without a series.
    database.Execute(
        "UPDATE task SET state = 1, host_id = 1, start_time = '2025-07-01 12:01:00+00' "
        "WHERE id IN (13, 14);"
        "UPDATE task SET state = 3, completion_time = '2025-07-01 12:01:00+00' WHERE id = 44;");
    samples = CollectDefaults(database);
    CHECK(samples.at(oldest("default")) == 1751371080);
    CHECK(samples.count(oldest("maven")) == 0);
    check_against_query(samples);
  }

  TEST_CASE("tag metrics follow inheritance") {
    SampleDatabase database;
    const Samples samples = CollectDefaults(database);

    // The deleted tag f40 has no series in either metric.
    CheckMetric(samples, "koji_packages_per_tag", SamplePackagesPerTag());
    CheckMetric(samples, "koji_builds_per_tag", SampleBuildsPerTag());
  }

  TEST_CASE("package builds count every state") {
    SampleDatabase database;
    const auto builds = [](const std::string& package) {
      return Series("koji_builds_per_package", {{"package", package}});
    };
    CheckMetric(CollectDefaults(database), "koji_builds_per_package",
                {
                    // 5.2.26 and 5.2.37-1 COMPLETE, 5.2.37-2 FAILED.
                    {builds("bash"), 3},
                    // 9.5 COMPLETE, 9.6 BUILDING.
                    {builds("coreutils"), 2},
                    // 6.14.0 COMPLETE, 6.14.1 CANCELED, 6.13.0 DELETED.
                    {builds("kernel"), 3},
                    {builds("python3"), 1},
                    {builds("zlib"), 1},
                    {builds("gcc"), 1},
                    {builds("legacy-tool"), 1},
                    {builds("nano"), 1},
                    {builds("firefox"), 1},
                    {builds("rust-serde"), 1},
                    {builds("ghost"), 1},
                    {builds("copy-jdk-configs"), 1},
                    // A package without builds.
                    {builds("orphan-lib"), 0},
                });
  }

  TEST_CASE("disabling a host updates hosts and channels") {
    SampleDatabase database;
    // What the hub's disableHost does: revoke the config row, insert a copy with enabled
    // FALSE.
    database.Execute(R"(
        UPDATE host_config SET active = NULL, revoke_event = get_event(), revoker_id = 1
            WHERE host_id = 1 AND active IS TRUE;
        INSERT INTO host_config (host_id, arches, capacity, enabled, creator_id)
            VALUES (1, 'x86_64 i686', 8.0, FALSE, 1);)");
    const Samples samples = CollectDefaults(database);

    CHECK(samples.at(Host("koji_hosts_enabled", "builder-01")) == 0);
    CHECK(samples.count(Host("koji_hosts_capacity", "builder-01")) == 0);
    // The enabled label changes, so the series of the enabled host is gone.
    CHECK(samples.count(Series(
              "koji_builders_update",
              {{"host", "builder-01.example.org"}, {"enabled", "true"}, {"ready", "true"}})) == 0);
    CHECK(samples.at(Series("koji_builders_update", {{"host", "builder-01.example.org"},
                                                     {"enabled", "false"},
                                                     {"ready", "true"}})) == 1751371200.25);

    std::vector<ChannelHosts> channels = kSampleChannels;
    // default keeps builder-02 (capacity 4, load 4.5, not ready).
    channels[0] = {"default", 1, 1, 0, 4, 4.5};
    // createrepo keeps builder-04 (capacity 3, load 0, not ready).
    channels[1] = {"createrepo", 1, 1, 0, 3, 0};
    CheckChannels(samples, channels);
  }

  TEST_CASE("leaving a channel updates only it") {
    SampleDatabase database;
    // What removeHostFromChannel does: revoke the host_channels row.
    database.Execute(R"(
        UPDATE host_channels SET active = NULL, revoke_event = get_event(), revoker_id = 1
            WHERE host_id = 2 AND channel_id = 9 AND active IS TRUE;)");

    std::vector<ChannelHosts> channels = kSampleChannels;
    // bigmem keeps bigmem-01 (capacity 16, load 12.25, ready).
    channels[2] = {"bigmem", 1, 1, 1, 16, 12.25};
    CheckChannels(CollectDefaults(database), channels);
  }

  TEST_CASE("task transitions move the counts") {
    SampleDatabase database;
    // builder-01 opens the FREE build task 16.
    database.Execute(
        "UPDATE task SET state = 1, host_id = 1, start_time = '2025-07-01 12:01:00+00' "
        "WHERE id = 16");
    std::vector<TaskCounts> tasks = kSampleTasks;
    // default/build: one fewer waiting, one more in progress; the total is unchanged.
    tasks[0] = {"default", "build", "f42-updates-candidate", 1, 3, 7, 3, 2, 1};
    CheckTasks(CollectDefaults(database), tasks);

    // It finishes.
    database.Execute(
        "UPDATE task SET state = 2, completion_time = '2025-07-01 12:30:00+00' WHERE id = 16");
    tasks[0] = {"default", "build", "f42-updates-candidate", 1, 2, 7, 4, 3, 1};
    CheckTasks(CollectDefaults(database), tasks);

    // A task of a new method in a channel with no tasks yet adds six series.
    database.Execute(
        "INSERT INTO task (state, channel_id, owner, method, arch) "
        "VALUES (0, 6, 3, 'vmExec', 'noarch')");
    tasks.push_back({"vm", "vmExec", "", 1, 0, 1, 0, 0, 0});
    CheckTasks(CollectDefaults(database), tasks);
  }

  TEST_CASE("blocking and listing change tag counts") {
    SampleDatabase database;
    // Block bash in f42-updates (a new blocked row with its owner, as the hub does) and
    // add nano to f42's package list.
    database.Execute(R"(
        INSERT INTO tag_packages (tag_id, package_id, blocked, creator_id) VALUES (2, 1, TRUE, 1);
        INSERT INTO tag_package_owners (tag_id, package_id, owner, creator_id) VALUES (2, 1, 3, 1);
        INSERT INTO tag_packages (tag_id, package_id, blocked, creator_id) VALUES (1, 8, FALSE, 1);
        INSERT INTO tag_package_owners (tag_id, package_id, owner, creator_id) VALUES (1, 8, 3, 1);)");
    const Samples samples = CollectDefaults(database);

    Samples packages = SamplePackagesPerTag();
    // nano joins f42's list; the blocked bash in f42-updates is not shown.
    packages[Tag("koji_packages_per_tag", "f42")] = 9;
    CheckMetric(samples, "koji_packages_per_tag", packages);

    Samples builds = SampleBuildsPerTag();
    // f42 now counts its nano build.
    builds[Tag("koji_builds_per_tag", "f42")] = 9;
    // bash-5.2.37 in f42-updates is hidden by the new block; nano remains.
    builds[Tag("koji_builds_per_tag", "f42-updates")] = 1;
    CheckMetric(samples, "koji_builds_per_tag", builds);
  }

  TEST_CASE("only COMPLETE tagged builds count") {
    SampleDatabase database;
    // The hub never leaves a listing on a build that is not COMPLETE; listTagged still
    // filters on the state, and so does the rule.
    database.Execute("UPDATE build SET state = 2 WHERE id = 9");
    const Samples samples = CollectDefaults(database);

    Samples builds = SampleBuildsPerTag();
    // python3-3.13.3 was counted in f42 and python-sig.
    builds[Tag("koji_builds_per_tag", "f42")] = 7;
    builds[Tag("koji_builds_per_tag", "python-sig")] = 0;
    CheckMetric(samples, "koji_builds_per_tag", builds);
    CHECK(samples.at(Series("koji_builds_per_package", {{"package", "python3"}})) == 1);
  }

  TEST_CASE("a deleted tag loses its series") {
    SampleDatabase database;
    database.Execute(R"(
        UPDATE tag_config SET active = NULL, revoke_event = get_event(), revoker_id = 1
            WHERE tag_id = 9 AND active IS TRUE;)");
    const Samples samples = CollectDefaults(database);

    CHECK(samples.count(Tag("koji_packages_per_tag", "f43")) == 0);
    CHECK(samples.count(Tag("koji_builds_per_tag", "f43")) == 0);
    CHECK(SamplesOf(samples, "koji_builds_per_tag").size() == SampleBuildsPerTag().size() - 1);
  }
}

// A model of the hub's package-list inheritance, written from Koji's readFullInheritance,
// readPackageList and readTaggedBuilds, to check the recursive SQL of koji_builds_per_tag
// on tag graphs with loops, shared ancestors, maxdepth, intransitive links and filters.
namespace {

struct InheritanceLink {
  int parent = 0;
  int priority = 0;
  std::optional<int> maxdepth;
  bool intransitive = false;
  bool noconfig = false;
  std::string pkg_filter;
};

struct PackageRow {
  int package = 0;
  bool blocked = false;
};

struct TagGraph {
  int tag_count = 0;
  std::vector<std::string> package_names;               // package id - 1 -> name
  std::map<int, std::vector<InheritanceLink>> parents;  // child -> links by priority
  std::map<int, std::vector<PackageRow>> package_rows;  // tag -> tag_packages rows
  std::map<int, std::vector<int>> tagged_packages;      // tag -> package of each build
};

// One entry of the walk: a link as reached on one path, with what it passes down.
struct WalkStep {
  InheritanceLink link;
  std::optional<int> depth_left;
  std::vector<std::string> filters;
};

class InheritanceWalk {
 public:
  explicit InheritanceWalk(const TagGraph& graph) : graph_(graph) {}

  std::vector<WalkStep> Run(int tag) {
    order_.clear();
    visits_.clear();
    Visit(tag, {}, std::nullopt, false, {});
    return order_;
  }

 private:
  // Follows the hub's recursion step by step, including its skip of a repeated parent
  // whose earlier visit was at least as permissive, and its carrying over of noconfig
  // from one sibling to the next.
  void Visit(int tag, std::set<int> path, std::optional<int> depth_left, bool noconfig,
             const std::vector<std::string>& filters) {
    if (depth_left && *depth_left < 1) return;
    path.insert(tag);
    const auto links = graph_.parents.find(tag);
    if (links == graph_.parents.end()) return;
    for (const InheritanceLink& link : links->second) {
      if (path.count(link.parent) > 0) continue;
      if (link.intransitive && path.size() > 1) continue;

      std::optional<int> next_depth = link.maxdepth;
      if (!next_depth) {
        if (depth_left) next_depth = *depth_left - 1;
      } else if (depth_left) {
        next_depth = std::min(*next_depth, *depth_left) - 1;
      }
      if (link.noconfig) noconfig = true;
      std::vector<std::string> next_filters = filters;
      if (!link.pkg_filter.empty()) next_filters.push_back(link.pkg_filter);

      if (!NeedsVisit(link.parent, next_depth, noconfig)) continue;
      visits_[link.parent].push_back({link, next_depth, next_filters});
      order_.push_back({link, next_depth, next_filters});
      Visit(link.parent, path, next_depth, noconfig, next_filters);
    }
  }

  // Returns false when an earlier visit of `tag` had no filters and at least this depth,
  // and its link had noconfig set only if this path has noconfig too.
  bool NeedsVisit(int tag, const std::optional<int>& depth_left, bool noconfig) const {
    const auto earlier = visits_.find(tag);
    if (earlier == visits_.end()) return true;
    for (const WalkStep& step : earlier->second) {
      bool sufficient = true;
      if (!depth_left) {
        if (step.depth_left) sufficient = false;
      } else if (step.depth_left && *step.depth_left < *depth_left) {
        sufficient = false;
      }
      if (step.link.noconfig && !noconfig) sufficient = false;
      if (!step.filters.empty()) sufficient = false;
      if (sufficient) return false;
    }
    return true;
  }

  const TagGraph& graph_;
  std::vector<WalkStep> order_;
  std::map<int, std::vector<WalkStep>> visits_;
};

// Counts the tagged builds of `tag` whose package the inherited package list has
// unblocked. The first row per package wins, and a row from an ancestor counts only when
// the package name matches every filter on the path from its first character.
int ModelBuildsPerTag(const TagGraph& graph, int tag) {
  std::map<int, bool> blocked_by_package;
  const auto take_rows = [&](int from_tag, const std::vector<std::string>& filters) {
    const auto rows = graph.package_rows.find(from_tag);
    if (rows == graph.package_rows.end()) return;
    for (const PackageRow& row : rows->second) {
      if (blocked_by_package.count(row.package) > 0) continue;
      const std::string& name = graph.package_names[row.package - 1];
      const bool matches_all = std::all_of(filters.begin(), filters.end(), [&](const auto& f) {
        return std::regex_search(name, std::regex(f), std::regex_constants::match_continuous);
      });
      if (matches_all) blocked_by_package[row.package] = row.blocked;
    }
  };
  take_rows(tag, {});
  for (const WalkStep& step : InheritanceWalk(graph).Run(tag)) {
    take_rows(step.link.parent, step.filters);
  }

  int builds = 0;
  const auto tagged = graph.tagged_packages.find(tag);
  if (tagged == graph.tagged_packages.end()) return 0;
  for (int package : tagged->second) {
    const auto entry = blocked_by_package.find(package);
    if (entry != blocked_by_package.end() && !entry->second) ++builds;
  }
  return builds;
}

TagGraph RandomTagGraph(std::mt19937& random) {
  const auto pick = [&](int low, int high) {
    return std::uniform_int_distribution<int>(low, high)(random);
  };
  const auto chance = [&](double p) { return std::bernoulli_distribution(p)(random); };
  // Names chosen so that the filters below match some from the start, some only in the
  // middle ("xpa", "apq") and some not at all.
  const std::vector<std::string> filters = {"",  "",        "",       "",  "pa",
                                            "q", "pa[0-2]", "qb|pa1", "x", ".*1"};

  TagGraph graph;
  graph.tag_count = pick(3, 9);
  graph.package_names = {"pa0", "pa1", "pa2", "pa3", "qb0", "qb1", "qb2", "xpa", "apq"};
  const int package_count = static_cast<int>(graph.package_names.size());
  for (int tag = 1; tag <= graph.tag_count; ++tag) {
    std::set<int> used_parents, used_priorities;
    const int link_count = pick(0, 3);
    for (int i = 0; i < link_count; ++i) {
      InheritanceLink link;
      link.parent = pick(1, graph.tag_count);
      link.priority = pick(0, 40);
      if (link.parent == tag || !used_parents.insert(link.parent).second ||
          !used_priorities.insert(link.priority).second) {
        continue;
      }
      if (chance(0.4)) link.maxdepth = pick(0, 3);
      link.intransitive = chance(0.2);
      link.noconfig = chance(0.2);
      link.pkg_filter = filters[pick(0, static_cast<int>(filters.size()) - 1)];
      graph.parents[tag].push_back(link);
    }
    std::sort(graph.parents[tag].begin(), graph.parents[tag].end(),
              [](const auto& a, const auto& b) { return a.priority < b.priority; });
    for (int package = 1; package <= package_count; ++package) {
      if (chance(0.35)) graph.package_rows[tag].push_back({package, chance(0.3)});
      if (chance(0.4)) graph.tagged_packages[tag].push_back(package);
    }
  }
  return graph;
}

// Replaces the tag data of `database` with `graph`: every tag exists, each tagged
// package gets one COMPLETE build.
void LoadTagGraph(const TestDatabase& database, const TagGraph& graph) {
  std::string sql =
      "TRUNCATE tag_listing, build, tag_package_owners, tag_packages, tag_inheritance, "
      "build_target_config, tag_config, tag, package CASCADE;\n";
  for (std::size_t i = 0; i < graph.package_names.size(); ++i) {
    sql += fmt::format("INSERT INTO package (id, name) VALUES ({}, '{}');\n", i + 1,
                       graph.package_names[i]);
  }
  int build = 0;
  for (int tag = 1; tag <= graph.tag_count; ++tag) {
    sql += fmt::format("INSERT INTO tag (id, name) VALUES ({0}, 'tag-{0}');\n", tag);
    sql += fmt::format("INSERT INTO tag_config (tag_id, creator_id) VALUES ({}, 1);\n", tag);
  }
  for (const auto& [tag, links] : graph.parents) {
    for (const InheritanceLink& link : links) {
      sql += fmt::format(
          "INSERT INTO tag_inheritance (tag_id, parent_id, priority, maxdepth, intransitive, "
          "noconfig, pkg_filter, creator_id) VALUES ({}, {}, {}, {}, {}, {}, '{}', 1);\n",
          tag, link.parent, link.priority, link.maxdepth ? std::to_string(*link.maxdepth) : "NULL",
          link.intransitive, link.noconfig, link.pkg_filter);
    }
  }
  for (const auto& [tag, rows] : graph.package_rows) {
    for (const PackageRow& row : rows) {
      sql += fmt::format(
          "INSERT INTO tag_packages (tag_id, package_id, blocked, creator_id) "
          "VALUES ({}, {}, {}, 1);\n",
          tag, row.package, row.blocked);
    }
  }
  for (const auto& [tag, packages] : graph.tagged_packages) {
    for (int package : packages) {
      ++build;
      sql += fmt::format(
          "INSERT INTO build (id, volume_id, pkg_id, version, release, state, "
          "completion_time, owner) VALUES ({0}, 0, {1}, '1', '{0}', 1, now(), 3);\n"
          "INSERT INTO tag_listing (tag_id, build_id, creator_id) VALUES ({2}, {0}, 1);\n",
          build, package, tag);
    }
  }
  database.Execute(sql);
}

}  // namespace

TEST_SUITE("default rules") {
  TEST_CASE("builds per tag match hub model") {
    SampleDatabase database;
    std::mt19937 random(20250701);
    constexpr int kGraphs = 100;
    for (int graph_index = 0; graph_index < kGraphs; ++graph_index) {
      CAPTURE(graph_index);
      const TagGraph graph = RandomTagGraph(random);
      LoadTagGraph(database, graph);
      const Samples samples =
          CollectSamples(database.ExporterConninfo(), {"queries/tags.yaml"});

      Samples expected;
      for (int tag = 1; tag <= graph.tag_count; ++tag) {
        expected[Tag("koji_builds_per_tag", fmt::format("tag-{}", tag))] =
            ModelBuildsPerTag(graph, tag);
      }
      CheckMetric(samples, "koji_builds_per_tag", expected);
    }
  }
}

// The role that deploy/sql/koji_exporter_role.sql creates: enough for every default rule,
// nothing more.
namespace {

// Every rule file in queries/, including files that kRuleFiles does not list yet.
std::vector<std::string> DefaultRuleFiles() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(testing::SourcePath("queries"))) {
    if (entry.path().extension() == ".yaml") {
      files.push_back("queries/" + entry.path().filename().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadSourceFile(const std::string& relative) {
  std::ifstream file(testing::SourcePath(relative));
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

Rule CountRowsRule(const std::string& table) {
  Rule rule;
  rule.name = "count_" + table;
  rule.sql = fmt::format("SELECT count(*) AS row_count FROM {}", table);
  rule.interval = std::chrono::seconds(60);
  rule.timeout = std::chrono::seconds(5);
  return rule;
}

}  // namespace

TEST_SUITE("exporter role") {
  TEST_CASE("every rule in queries runs as koji_exporter") {
    SampleDatabase database;
    QueryRunner runner(database.ExporterConninfo());
    const std::vector<std::string> files = DefaultRuleFiles();
    REQUIRE(files.size() >= kRuleFiles.size());
    for (const std::string& file : files) {
      for (const Rule& rule : ParseRuleFile(ReadSourceFile(file), file, RuleDefaults{})) {
        CAPTURE(file);
        CAPTURE(rule.name);
        try {
          IncrementalState state;
          RunRule(runner, rule, &state);
        } catch (const QueryError& error) {
          FAIL_CHECK(std::string(error.what()));
        }
      }
    }
  }

  TEST_CASE("tables outside the grants are denied") {
    SampleDatabase database;
    QueryRunner exporter(database.ExporterConninfo());
    QueryRunner superuser(database.Conninfo());
    // Koji tables that no default rule reads. sessions contains login session keys.
    for (const std::string table : {"sessions", "users", "events", "permissions"}) {
      CAPTURE(table);
      const Rule rule = CountRowsRule(table);
      // The same query works for the superuser, so only the privilege is missing.
      CHECK_NOTHROW(superuser.Run(rule));
      try {
        exporter.Run(rule);
        FAIL_CHECK("koji_exporter could read " << table);
      } catch (const QueryError& error) {
        // The SQLSTATE is not checked: libpqxx 6.4 throws insufficient_privilege without
        // one.
        CHECK(error.failure() == QueryFailure::kSql);
        CHECK(std::string(error.what()) == "ERROR:  permission denied for table " + table);
      }
    }
  }

  TEST_CASE("koji_exporter sessions default to read only") {
    SampleDatabase database;
    pqxx::connection session(database.ExporterConninfo());
    pqxx::nontransaction settings(session);
    CHECK(settings.exec1("SHOW default_transaction_read_only")[0].as<std::string>() == "on");
    CHECK(settings.exec1("SHOW statement_timeout")[0].as<std::string>() == "1min");
    CHECK(settings.exec1("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")[0]
              .as<bool>() == false);

    // get_event() inserts into events: refused as a write in a read-only transaction,
    // and refused for lack of privilege once the session turns the default off.
    const std::string events_before = database.QueryValue("SELECT count(*) FROM events");
    try {
      settings.exec1("SELECT get_event()");
      FAIL_CHECK("get_event() succeeded in a read-only transaction");
    } catch (const pqxx::sql_error& error) {
      CHECK(error.sqlstate() == "25006");
    }
    settings.exec0("SET default_transaction_read_only = off");
    CHECK_THROWS_AS(settings.exec1("SELECT get_event()"), pqxx::insufficient_privilege);
    CHECK(database.QueryValue("SELECT count(*) FROM events") == events_before);
  }
}

}  // namespace koji_exporter
