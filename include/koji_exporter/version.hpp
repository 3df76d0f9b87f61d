// Version and source revision of this build, as koji_exporter_build_info reports them.
#pragma once

namespace koji_exporter {

/// Release version, e.g. "0.1.0".
const char* Version();
/// Short git revision the binary was built from, or "unknown".
const char* Revision();

}  // namespace koji_exporter
