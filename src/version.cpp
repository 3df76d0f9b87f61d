// Exposes the version and revision that CMake passes in as compile definitions.
#include "koji_exporter/version.hpp"

namespace koji_exporter {

const char* Version() { return KOJI_EXPORTER_VERSION; }
const char* Revision() { return KOJI_EXPORTER_REVISION; }

}  // namespace koji_exporter
