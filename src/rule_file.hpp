// Reads one rule file into rules. It checks what one file shows, and rule_loader.cpp checks
// the names that repeat across files.
#pragma once

#include <string>
#include <vector>

#include "config_yaml.hpp"
#include "duration.hpp"
#include "koji_exporter/rule.hpp"

namespace koji_exporter::detail {

// Reads the rules of one rule file, reporting every problem in `problems`.
std::vector<Rule> ReadRuleFile(const std::string& text, const Timing& defaults,
                               ProblemList& problems);

}  // namespace koji_exporter::detail
