#!/usr/bin/env bash
# Runs every test: installs the build dependencies, builds with warnings as errors, starts
# a throwaway PostgreSQL unless PGHOST names one, then runs ctest (unit, database and
# end-to-end suites, and promtool on the golden expositions).
# Extra arguments go to ctest, e.g. `scripts/test.sh -L unit` or `-R query_runner`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}

"$root/scripts/install-deps.sh"
BUILD_DIR=$build_dir "$root/scripts/build.sh"

if [ -z "${PGHOST:-}" ]; then
  # The socket directory is private and the server listens on no TCP port, so this
  # cluster never meets another one; the port number only names the socket file.
  pg_dir=$(mktemp -u "${TMPDIR:-/tmp}/koji-exporter-test-pg.XXXXXX")
  pg_port=55498
  trap '"$root/scripts/demo_postgres.sh" stop "$pg_dir" >/dev/null 2>&1 || true' EXIT
  "$root/scripts/demo_postgres.sh" start "$pg_dir" "$pg_port" >/dev/null
  export PGHOST=$pg_dir PGPORT=$pg_port PGUSER=postgres
  echo "test: started a throwaway PostgreSQL in $pg_dir" >&2
fi

cd "$build_dir"
ctest --output-on-failure -j "$(nproc)" "$@"
