// The validated model of the configuration: rules, their metric mappings and the
// exporter's own settings. Plain data; the loader builds it, everything else reads it.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace koji_exporter {

/// Position in a YAML file, 1-based, for messages of the form "file:line:col".
struct SourceMark {
  std::string file;
  int line = 0;
  int column = 0;
};

/// Samples one metric of a rule may have when the rule sets no `max_series`: enough for
/// one series per package of a Fedora-size Koji (about 40,000), but a join that went wrong
/// cannot flood Prometheus with millions.
inline constexpr std::size_t kDefaultMaxSeries = 50000;

/// Maximum label value length exported, in bytes; longer values are cut at a UTF-8 character
/// boundary. Koji's own names are far shorter.
inline constexpr std::size_t kMaxLabelValueBytes = 1024;

/// Stale-after of a rule that sets none, in intervals.
inline constexpr int kDefaultStaleIntervals = 3;

/// Prometheus metric type of a rule's metric; only the two that a single SQL column
/// can feed.
enum class MetricType { kGauge, kCounter };

/// Returns "gauge" or "counter".
const char* MetricTypeName(MetricType type);

/// One metric family fed by a rule: which column gives the sample value, which columns
/// give the labels (label name = column name) and which labels are constant.
struct MetricSpec {
  std::string name;
  MetricType type = MetricType::kGauge;
  /// HELP text as the user wrote it.
  std::string help;
  /// HELP text as exported: the user's text plus the feeding rule, its file and its
  /// interval, because every value comes from a scheduled run.
  std::string exported_help;
  std::string value_column;
  std::vector<std::string> label_columns;
  std::map<std::string, std::string> static_labels;
  SourceMark mark;
};

/// Settings of an incremental rule: one whose SQL returns one row per database row, of
/// which each run reads only the rows that are new or may still change. The exporter keeps
/// the sums of the rows that can no longer change.
struct IncrementalSpec {
  /// Column with each row's key: an integer that is unique and larger for newer rows, such
  /// as a serial primary key.
  std::string key_column;
  /// Boolean column, true while the row may still change (a task that has not finished).
  /// Rows where it is false or NULL are summed once and never read again.
  std::string open_column;
  /// How long after a key is first seen rows with smaller keys are still looked for,
  /// because transactions commit out of key order.
  std::chrono::milliseconds reorder_window{std::chrono::minutes(10)};
  /// statement_timeout of the statements that sum all rows when the rule starts.
  std::chrono::milliseconds seed_timeout{std::chrono::minutes(10)};
};

/// One SQL statement run on its own schedule, feeding one or more metric families.
struct Rule {
  /// snake_case name, unique across all rule files; the `query` label of self-metrics.
  std::string name;
  std::string sql;
  std::chrono::milliseconds interval{0};
  /// Server-side statement_timeout for each run.
  std::chrono::milliseconds timeout{0};
  /// How long after the last successful run the rule's samples are still served while
  /// runs fail; after that they are dropped until a run succeeds again.
  std::chrono::milliseconds stale_after{0};
  /// Maximum samples per metric family; rows beyond it are dropped and counted.
  std::size_t max_series = kDefaultMaxSeries;
  std::vector<MetricSpec> metrics;
  /// Set for an incremental rule.
  std::optional<IncrementalSpec> incremental;
  SourceMark mark;
};

/// Connection settings for the Koji database (normally a read replica).
struct DatabaseConfig {
  /// libpq conninfo ("host=... dbname=...") or URL ("postgresql://..."). May contain a
  /// password: print it only through RedactConninfo.
  std::string dsn;
  /// File whose first line is the password; empty to use PGPASSWORD/PGPASSFILE.
  std::string password_file;
  /// Maximum number of sessions the exporter opens; also the number of rules that can
  /// run at the same time.
  int max_connections = 2;
};

/// The whole configuration: main file plus every rule file it names.
struct Config {
  std::string path;
  DatabaseConfig database;
  /// "host:port", ":port" (all addresses) or "[::1]:port".
  std::string listen_address;
  std::vector<std::string> rule_file_patterns;
  std::chrono::milliseconds default_interval{std::chrono::seconds(60)};
  std::chrono::milliseconds default_timeout{std::chrono::seconds(10)};
  /// Rule files actually loaded, in the order read.
  std::vector<std::string> rule_files;
  std::vector<Rule> rules;
};

/// Returns a text that is equal for two rules exactly when every setting of the rules is
/// equal; a reload keeps the state of rules whose fingerprint did not change.
std::string RuleFingerprint(const Rule& rule);

/// Returns a 48-bit hash of the rules and connection settings (`conninfo` as built, which
/// may hold the password: only the hash leaves this function), for
/// koji_exporter_config_hash.
double ConfigHash(const Config& config, const std::string& conninfo);

}  // namespace koji_exporter
