#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, ASan and UBSan into build-fuzz/ (or
# $FUZZ_BUILD_DIR) and runs each for SECONDS (default 60) on a copy of its checked-in corpus
# in tests/fuzz/corpus/. A crash stops the run and saves the input that caused it in the
# build directory. Turn that input into a regression test and add it to the corpus.
#
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${1:-60}

if ! command -v clang++-14 >/dev/null; then
  echo "fuzz: clang++-14 not found; install clang-14 and libclang-rt-14-dev" >&2
  exit 1
fi

CXX=clang++-14 cmake -S "$root" -B "$build_dir" -DKOJI_EXPORTER_FUZZ=ON \
  -DKOJI_EXPORTER_TESTS=OFF -DKOJI_EXPORTER_WERROR=ON >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target rule_file_fuzz http_request_fuzz

for target in rule_file http_request; do
  # The fuzzer adds the inputs it finds to its first corpus directory: a scratch copy keeps
  # the checked-in corpus small and reviewed.
  corpus="$build_dir/corpus-$target"
  rm -rf "$corpus"
  cp -r "$root/tests/fuzz/corpus/$target" "$corpus"
  echo "fuzz: running $target for $seconds s" >&2
  (cd "$build_dir" && "./tests/fuzz/${target}_fuzz" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 "$corpus" 2>&1 | tail -n 12)
done
echo "fuzz: no crash in ${seconds} s per target"
