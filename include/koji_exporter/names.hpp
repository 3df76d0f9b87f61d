// Prometheus naming rules for metric and label names; used when rules are loaded and again
// when samples are exposed. Only names: values, escaping and units are checked elsewhere.
#pragma once

#include <string>

namespace koji_exporter {

/// Returns whether `name` is a metric name this exporter accepts: [a-zA-Z_][a-zA-Z0-9_]*.
/// Prometheus also allows colons, but it reserves them for recording rules, so an
/// exporter must not emit them. Thread-safe.
bool IsValidMetricName(const std::string& name);

/// Returns whether `name` is a valid Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*, not
/// starting with "__", because Prometheus keeps names with that prefix for its own use
/// (__name__, __address__ and the other relabeling labels). Reserved names such as "job"
/// are valid here; check them with IsReservedLabelName. Thread-safe.
bool IsValidLabelName(const std::string& name);

/// Returns whether `name` is a label name that rule metrics must not use, although it is
/// valid syntax. Each one is reserved for its own reason:
/// - le: the upper bound of a histogram bucket, which histogram_quantile() reads, so a
///   gauge or counter carrying it would be mistaken for a bucket;
/// - quantile: the quantile of a summary sample, so the same confusion with summaries;
/// - job, instance: target labels that Prometheus attaches to every scraped series. With
///   the default honor_labels: false it renames an exported one to exported_job or
///   exported_instance, so the column's values end up under another name;
/// - type: reserved by this exporter because Koji has many kinds of type (build type,
///   archive type, buildroot type, checksum type), and a label named only "type" would
///   not say which one it holds.
/// Thread-safe.
bool IsReservedLabelName(const std::string& name);

/// Returns why `name` is reserved, as a lowercase clause for messages, or an empty
/// string if IsReservedLabelName(name) is false. Thread-safe.
std::string ReservedLabelReason(const std::string& name);

}  // namespace koji_exporter
