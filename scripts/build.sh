#!/usr/bin/env bash
# Configures and builds koji_exporter into build/ (or $BUILD_DIR), with warnings as errors.
# Builds everything, tests included, unless BUILD_TARGET names one target
# (e.g. BUILD_TARGET=koji_exporter). Extra arguments go to the CMake configure step.
# run.sh and test.sh configure the same way, so switching between them rebuilds nothing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}

cmake -S "$root" -B "$build_dir" -DKOJI_EXPORTER_WERROR=ON "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
