#!/usr/bin/env bash
# Builds koji_exporter and runs it.
#
#   scripts/run.sh [FLAG...]
#
# With KOJI_EXPORTER_CONFIG set to a main configuration file, runs the exporter with it.
# Without it, there is no database to watch, so the script starts a demo instead: a
# throwaway PostgreSQL in a temporary directory (Unix socket only), loaded with generated
# Koji data that keeps changing, and the exporter with the default rules against it.
# Ctrl-C stops the exporter, the demo activity and the demo database.
# The demo listens on 127.0.0.1:19716 only. FLAGs go to koji_exporter, e.g.
# --web.listen-address=:9999 or --log.level=debug.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
exporter=$build_dir/koji_exporter
demo=$root/scripts/demo_postgres.sh

"$root/scripts/install-deps.sh"
BUILD_DIR=$build_dir BUILD_TARGET=koji_exporter "$root/scripts/build.sh"

if [ -n "${KOJI_EXPORTER_CONFIG:-}" ]; then
  exec "$exporter" --config.file="$KOJI_EXPORTER_CONFIG" "$@"
fi

# The demo: everything it starts lives under these two directories.
demo_dir=$(mktemp -u "${TMPDIR:-/tmp}/koji-exporter-demo-db.XXXXXX")
config_dir=$(mktemp -d "${TMPDIR:-/tmp}/koji-exporter-demo-config.XXXXXX")
exporter_pid=""

stop_demo() {
  trap - EXIT INT TERM
  if [ -n "$exporter_pid" ] && kill -0 "$exporter_pid" 2>/dev/null; then
    kill -TERM "$exporter_pid" 2>/dev/null || true
    wait "$exporter_pid" 2>/dev/null || true
  fi
  "$demo" stop "$demo_dir" >/dev/null 2>&1 || true
  rm -rf "$config_dir"
  echo "run: demo stopped; nothing is left running" >&2
}
trap stop_demo EXIT
trap 'exit 130' INT TERM

echo "run: no KOJI_EXPORTER_CONFIG set, so starting the demo database in $demo_dir" >&2
"$demo" start "$demo_dir" >/dev/null
echo "run: generating demo Koji data (about a minute)" >&2
"$demo" load "$demo_dir" >/dev/null
conninfo=$("$demo" conninfo "$demo_dir")

cat >"$config_dir/koji_exporter.yaml" <<CONFIG
# Written by scripts/run.sh for the demo database; removed when the demo stops.
database:
  dsn: "$conninfo"
web:
  listen_address: "127.0.0.1:19716"
rule_files:
  - "$root/queries/*.yaml"
CONFIG

"$demo" activity "$demo_dir" 5 >/dev/null 2>&1 &

"$exporter" --config.file="$config_dir/koji_exporter.yaml" "$@" &
exporter_pid=$!

listen="127.0.0.1:19716"
for flag in "$@"; do
  case $flag in --web.listen-address=*) listen=${flag#*=} ;; esac
done
port=${listen##*:}
echo "run: koji_exporter serves http://localhost:$port/metrics (demo data; Ctrl-C stops everything)" >&2

wait "$exporter_pid"
