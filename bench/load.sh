#!/usr/bin/env bash
# Creates the database koji in the benchmark cluster of DIR (started by bench/postgres.sh)
# and fills it at one scale, timing each phase:
#
#   bench/load.sh DIR SCALE [NAME=VALUE...]
#
# NAME=VALUE overrides one size of bench/scales.sh, e.g. tasks=2000000 for a partial run.
# Builds and tasks load in two sessions at once. Prints one "load: PHASE SECONDS" line per
# phase on standard output.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench_dir/.." && pwd)
# shellcheck source=bench/postgres.sh
source "$bench_dir/postgres.sh"
# shellcheck source=bench/scales.sh
source "$bench_dir/scales.sh"

if [[ $# -lt 2 ]]; then
  echo "usage: bench/load.sh DIR SCALE [NAME=VALUE...]" >&2
  exit 2
fi
dir=$1 scale=$2
shift 2
bench_scale "$scale"
for override in "$@"; do
  if [[ ! $override =~ ^(hosts|tags|packages|builds|listings|tasks|active|span_days)=[0-9]+$ ]]; then
    echo "bench: invalid size \"$override\": expected NAME=NUMBER with NAME one of hosts, tags," \
      "packages, builds, listings, tasks, active, span_days" >&2
    exit 2
  fi
  declare "size_${override%%=*}=${override#*=}"
done
mapfile -t size_args < <(bench_scale_psql_args)

phase_start=$SECONDS
phase() {
  echo "load: $1 $((SECONDS - phase_start))"
  phase_start=$SECONDS
}

bench_pg_psql "$dir" postgres -c "CREATE DATABASE koji"
bench_pg_psql "$dir" koji -f "$root/tests/fixtures/koji_schema.sql" >/dev/null
bench_pg_psql "$dir" koji "${size_args[@]}" -f "$bench_dir/sql/prepare.sql"
bench_pg_psql "$dir" koji -f "$bench_dir/sql/catalog.sql"
phase catalog

bench_pg_psql "$dir" koji -f "$bench_dir/sql/builds.sql" &
builds_pid=$!
bench_pg_psql "$dir" koji -f "$bench_dir/sql/tasks.sql" &
tasks_pid=$!
status=0
wait "$builds_pid" || status=1
wait "$tasks_pid" || status=1
if [[ $status -ne 0 ]]; then
  echo "bench: loading builds or tasks failed (message above)" >&2
  exit 1
fi
phase builds_and_tasks

bench_pg_psql "$dir" koji -f "$bench_dir/sql/finish.sql"
phase keys_and_indexes

# Sets hint bits and the visibility map once, so that the first queries measured do not
# pay for it, and gives the planner statistics.
bench_pg_psql "$dir" koji -c "VACUUM (FREEZE, ANALYZE)"
phase vacuum

bench_pg_psql "$dir" koji -f "$bench_dir/sql/roles.sql"
