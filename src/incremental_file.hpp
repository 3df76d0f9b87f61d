// Reads the "incremental" section of a rule, which makes the rule read only new rows and
// rows that may still change on each run.
#pragma once

#include "config_yaml.hpp"
#include "koji_exporter/rule.hpp"

namespace koji_exporter::detail {

// Reads "incremental" from a rule's entries into `rule.incremental`, if the key is there.
void ReadIncremental(const Entries& entries, Rule& rule, const Scope& scope);

// Reports metrics of an incremental rule whose label columns differ from the first
// metric's: the exporter sums rows by one set of labels for all of them.
void CheckIncrementalLabels(const Rule& rule, const Scope& scope);

// Reports an incremental rule whose outermost query groups, orders or limits its rows:
// each run filters that query by key, so it must return one plain row per key.
void CheckIncrementalQuery(const Rule& rule, const YAML::Mark& sql_mark, const Scope& scope);

}  // namespace koji_exporter::detail
