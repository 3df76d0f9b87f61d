// libFuzzer target for the rule-file loader: any bytes must give rules or a ConfigError,
// never a crash, a hang or another exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "koji_exporter/rule_loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    koji_exporter::ParseRuleFile(text, "fuzz.yaml", koji_exporter::RuleDefaults{});
  } catch (const koji_exporter::ConfigError&) {
    // The expected outcome for most inputs.
  }
  return 0;
}
