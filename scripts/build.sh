#!/usr/bin/env bash
# Configures and builds koji_exporter and its tests into build/ (or $BUILD_DIR).
# Extra arguments go to the CMake configure step, e.g. -DKOJI_EXPORTER_WERROR=ON.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}

cmake -S "$root" -B "$build_dir" "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
