#!/usr/bin/env bash
# Measures what koji_exporter costs the Koji database, at one scale, in one go:
#
#   bench/run.sh SCALE [--smoke]       SCALE: small, cern or fedora (bench/scales.sh)
#
# On this machine only (127.0.0.1 and Unix sockets) it starts a private PostgreSQL 15 with
# pg_stat_statements, loads generated Koji data, keeps tasks arriving and finishing, and
# then, one after the other:
#   1. runs koji_exporter with the default rules (queries/*.yaml): database time at start
#      and in a steady window, per rule, from pg_stat_statements;
#   2. runs the same metrics as plain full-count SQL in Debian's prometheus-sql-exporter
#      and prometheus-postgres-exporter: database time of one cycle each;
#   3. runs the bare statements of one cycle in psql (the floor), and the full counts;
#   4. loads /metrics with wrk, and nginx serving the same bytes as a static file;
#   5. stops the activity and checks that the task counters equal a full count.
# Each client logs in as its own role, and pg_stat_statements keeps its counters per role.
# Results go to bench/results/SCALE.json and SCALE.md (BENCH_RESULTS overrides the
# directory) and a summary to standard output. --smoke shortens every window, writes the
# results into the work directory, and is what bench/smoke.sh runs.
#
# Exit status: 0 when every step ran and the counters were exact, 1 otherwise. There are
# no performance thresholds. BENCH_KEEP=1 keeps the work directory (/tmp/koji-bench.*).
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench_dir/.." && pwd)
# The helpers in bench/*.py import each other; keep their bytecode out of the tree.
export PYTHONDONTWRITEBYTECODE=1
# shellcheck source=bench/postgres.sh
source "$bench_dir/postgres.sh"
# shellcheck source=bench/scales.sh
source "$bench_dir/scales.sh"

scale=${1:-}
smoke=false
if [[ ${2:-} == --smoke ]]; then
  smoke=true
elif [[ -n ${2:-} || -z $scale ]]; then
  echo "usage: bench/run.sh SCALE [--smoke]   (SCALE: small, cern or fedora)" >&2
  exit 2
fi
bench_scale "$scale"

# Ports on 127.0.0.1; override when they are taken. Both lie below Linux's ephemeral range
# (32768 and up), where the many client connections of a run could hold the port.
pg_port=${BENCH_PG_PORT:-25560}
exporter_port=${BENCH_HTTP_PORT:-19960}
sql_exporter_port=$((exporter_port + 1))
postgres_exporter_port=$((exporter_port + 2))
nginx_port=$((exporter_port + 3))

# Window lengths in seconds. The steady window outlasts the 5m interval of the heavy rules.
# A rule that does not run in it, such as tag_builds (every 15m), is measured by its first
# run.
if $smoke; then
  steady_seconds=40 wrk_seconds=3 floor_repeats=2 start_limit=300 cycle_limit=300
else
  steady_seconds=330 wrk_seconds=10 floor_repeats=5 start_limit=3600 cycle_limit=3600
fi
churn_step_limit=$((6 * 3600))

build_dir=${BUILD_DIR:-$root/build}
exporter_binary=$build_dir/koji_exporter
work=$(mktemp -d /tmp/koji-bench.XXXXXX)
chmod 0755 "$work"
raw=$work/raw
pg_dir=$work/pg
mkdir -p "$raw"
if $smoke; then
  results=${BENCH_RESULTS:-$work/results}
else
  results=${BENCH_RESULTS:-$bench_dir/results}
fi

started_pids=()
cleanup() {
  local pid
  touch "$work/churn.stop"
  for pid in "${started_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${started_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  bench_pg_stop "$pg_dir" || true
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    echo "bench: kept $work" >&2
  else
    rm -rf -- "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "bench: $*" >&2; }

# Records one fact for the report.
fact() { printf '%s=%s\n' "$1" "$2" >>"$raw/facts.env"; }

psql_as() {
  local role=$1
  shift
  "$BENCH_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U "$role" \
    -d koji "$@"
}

# Writes pg_stat_statements of the benchmark's roles to raw/stats_NAME.json.
snapshot() {
  bench_pg_psql "$pg_dir" koji -At -c "
    SELECT coalesce(json_agg(json_build_object(
               'role', r.rolname, 'calls', s.calls, 'rows', s.rows,
               'plan_ms', s.total_plan_time, 'exec_ms', s.total_exec_time, 'query', s.query)), '[]')
    FROM pg_stat_statements AS s
    JOIN pg_roles AS r ON r.oid = s.userid
    WHERE r.rolname LIKE 'bench\_%'" >"$raw/stats_$1.json"
  fact "time_$1" "$(date +%s.%N)"
}

scrape() {
  curl -sf --max-time 30 "http://127.0.0.1:$exporter_port/metrics" >"$raw/metrics_$1.prom"
}

# Prints the exporter's koji_exporter_query_runs_total summed over rules matching $1.
runs_total() {
  curl -sf --max-time 30 "http://127.0.0.1:$exporter_port/metrics" |
    awk -v rule="$1" '$1 ~ "^koji_exporter_query_runs_total\\{query=\"" rule "\"\\}$" { n += $2 }
                      END { print n + 0 }'
}

memory() {
  local pid=$1 name=$2 field
  for field in VmRSS VmHWM; do
    fact "exporter_${field}_kib_$name" "$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status")"
  done
}

terminate_sessions() {
  bench_pg_psql "$pg_dir" koji -At -c \
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '$1'" >/dev/null
}

# Steps --------------------------------------------------------------------------------

prepare_machine() {
  "$root/scripts/install-deps.sh"
  "$bench_dir/install-deps.sh"
  say "building koji_exporter in $build_dir"
  BUILD_DIR=$build_dir BUILD_TARGET=koji_exporter "$root/scripts/build.sh" >/dev/null
  fact scale "$scale"
  fact smoke "$smoke"
  fact date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  fact revision "$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  fact nproc "$(nproc)"
  fact memory_kib "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
  fact cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  fact kernel "$(uname -r)"
  fact loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
  fact steady_seconds "$steady_seconds"
  fact wrk_seconds "$wrk_seconds"
  fact churn_rate_millis "$churn_rate_millis"
  fact floor_repeats "$floor_repeats"
}

load_database() {
  say "starting PostgreSQL on 127.0.0.1:$pg_port and loading the $scale scale"
  bench_pg_start "$pg_dir" "$pg_port" "$shared_buffers"
  fact postgres_version "$(bench_pg_psql "$pg_dir" postgres -At -c 'SHOW server_version')"
  fact shared_buffers "$shared_buffers"
  local started=$SECONDS phase seconds
  "$bench_dir/load.sh" "$pg_dir" "$scale" | tee "$raw/load.txt" >&2
  while read -r _ phase seconds; do
    fact "load_${phase}_seconds" "$seconds"
  done <"$raw/load.txt"
  fact load_seconds "$((SECONDS - started))"
  bench_pg_psql "$pg_dir" koji -At -F '=' -c "
    SELECT 'rows_' || relname, n_live_tup FROM pg_stat_user_tables
    WHERE relname IN ('task', 'build', 'tag_listing', 'tag', 'package', 'tag_packages', 'host')
    UNION ALL SELECT 'database_bytes', pg_database_size('koji')" >>"$raw/facts.env"
  python3 "$bench_dir/configs.py" "$root" "$work" "$pg_port" "$exporter_port"
}

# Feeds bench/sql/churn.sql to one psql session once a second until churn.stop exists.
churn_loop() {
  local step=0 created=0 total
  while ((step < churn_step_limit)) && [[ ! -e $work/churn.stop ]]; do
    total=$(((step + 1) * churn_rate_millis / 1000))
    if ((total > created)); then
      printf '\\set arrivals %d\n\\set step %d\n\\i %s\n' "$((total - created))" "$step" \
        "$bench_dir/sql/churn.sql"
      created=$total
    fi
    sleep 1
    step=$((step + 1))
  done
}

start_churn() {
  say "simulating Koji activity: $churn_rate_millis tasks per 1000 s arrive and finish"
  churn_loop | psql_as bench_churn >"$raw/churn.log" 2>&1 &
  churn_pid=$!
  started_pids+=("$churn_pid")
}

# Starts koji_exporter and waits until every default rule has run once.
measure_exporter_start() {
  local rules
  rules=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import rules; print(len(rules.load_rules(sys.argv[2])))' "$bench_dir" "$root")
  snapshot exporter_before
  say "starting koji_exporter; waiting until all $rules rules have run once"
  "$exporter_binary" --config.file="$work/koji_exporter.yaml" >"$raw/exporter.log" 2>&1 &
  exporter_pid=$!
  started_pids+=("$exporter_pid")
  local started=$SECONDS ran=0
  while ((SECONDS - started < start_limit)); do
    sleep 1
    ran=$(curl -sf --max-time 5 "http://127.0.0.1:$exporter_port/metrics" |
      awk '/^koji_exporter_query_runs_total\{/ && $2 > 0 { n++ } END { print n + 0 }' || echo 0)
    ((ran >= rules)) && break
  done
  if ((ran < rules)); then
    say "only $ran of $rules rules ran within ${start_limit}s; see $raw/exporter.log"
    return 1
  fi
  fact exporter_start_seconds "$((SECONDS - started))"
  scrape start
  snapshot exporter_started
  memory "$exporter_pid" start
}

measure_exporter_steady() {
  say "measuring koji_exporter for ${steady_seconds}s"
  fact newest_task_steady_start "$(bench_pg_psql "$pg_dir" koji -At -c 'SELECT max(id) FROM task')"
  sleep "$steady_seconds"
  fact newest_task_steady_end "$(bench_pg_psql "$pg_dir" koji -At -c 'SELECT max(id) FROM task')"
  scrape steady
  snapshot exporter_steady
}

# Runs prometheus-sql-exporter until each rule's query has completed once.
measure_sql_exporter() {
  snapshot sql_exporter_before
  say "running prometheus-sql-exporter until every query has completed once"
  prometheus-sql-exporter -config.file "$work/sql_exporter.yml" \
    -web.listen-address "127.0.0.1:$sql_exporter_port" >"$raw/sql_exporter.log" 2>&1 &
  local pid=$! started=$SECONDS covered=0 rules
  started_pids+=("$pid")
  rules=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import rules; print(len(rules.load_rules(sys.argv[2])))' "$bench_dir" "$root")
  while ((SECONDS - started < cycle_limit)); do
    sleep 2
    snapshot sql_exporter_poll
    covered=$(python3 "$bench_dir/stats.py" covered "$root" "$raw/stats_sql_exporter_poll.json" bench_sql_exporter)
    ((covered >= rules)) && break
  done
  fact sql_exporter_seconds "$((SECONDS - started))"
  curl -sf --max-time 60 "http://127.0.0.1:$sql_exporter_port/metrics" >"$raw/sql_exporter.prom" || true
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  terminate_sessions bench_sql_exporter
  snapshot sql_exporter_after
  if ((covered < rules)); then
    say "prometheus-sql-exporter completed $covered of $rules queries within ${cycle_limit}s"
  fi
}

# Runs prometheus-postgres-exporter for one scrape, which runs every query once.
measure_postgres_exporter() {
  snapshot postgres_exporter_before
  say "running prometheus-postgres-exporter for one scrape"
  DATA_SOURCE_NAME="postgresql://bench_postgres_exporter@127.0.0.1:$pg_port/koji?sslmode=disable" \
    prometheus-postgres-exporter --extend.query-path="$work/postgres_exporter.yml" \
    --web.listen-address="127.0.0.1:$postgres_exporter_port" --disable-default-metrics \
    --disable-settings-metrics --no-collector.database --no-collector.bgwriter \
    >"$raw/postgres_exporter.log" 2>&1 &
  local pid=$! started=$SECONDS
  started_pids+=("$pid")
  local tries=0
  until curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$postgres_exporter_port/"; do
    tries=$((tries + 1))
    ((tries < 50)) || { say "prometheus-postgres-exporter did not start; see its log"; return 1; }
    sleep 0.2
  done
  started=$SECONDS
  curl -sf --max-time "$cycle_limit" "http://127.0.0.1:$postgres_exporter_port/metrics" \
    >"$raw/postgres_exporter.prom" || say "the scrape of prometheus-postgres-exporter failed"
  fact postgres_exporter_scrape_seconds "$((SECONDS - started))"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  terminate_sessions bench_postgres_exporter
  snapshot postgres_exporter_after
}

# Runs the bare statements of one cycle in psql, with the keys that a steady run of the
# task rule reads. These are the new keys of the reorder window (10 min), the tasks of the
# last 30 s in full, and the open tasks.
measure_floor() {
  say "running the bare statements in psql ($floor_repeats times) and the full counts once"
  local keys
  keys=$(bench_pg_psql "$pg_dir" koji -At -F ' ' -c "
    SELECT max(id) - $churn_rate_millis * 600 / 1000, $churn_rate_millis * 600 / 1000 + 50000,
           (SELECT coalesce(array_agg(id), '{}') FROM (
               SELECT id FROM task ORDER BY id DESC LIMIT greatest(1, $churn_rate_millis * 30 / 1000)) AS n),
           (SELECT coalesce(array_agg(id), '{}') FROM task WHERE state IN (0, 1, 4))
    FROM task")
  local low limit new open
  read -r low limit new open <<<"$keys"
  snapshot floor_before
  local i
  for ((i = 0; i < floor_repeats; i++)); do
    psql_as bench_psql -v low_key="$low" -v key_limit="$limit" -v new_keys="$new" \
      -v open_keys="$open" -f "$work/floor.sql"
  done
  local started=$SECONDS
  psql_as bench_psql -f "$work/full_counts.sql"
  fact full_counts_seconds "$((SECONDS - started))"
  snapshot floor_after
}

measure_http() {
  say "loading /metrics with wrk for ${wrk_seconds}s, then nginx with the same bytes"
  mkdir -p "$work/www" "$work/nginx"
  curl -sf --max-time 30 "http://127.0.0.1:$exporter_port/metrics" >"$work/www/metrics"
  chmod -R a+rX "$work/www"
  fact metrics_bytes "$(stat -c %s "$work/www/metrics")"
  fact metrics_series "$(grep -vc '^#' "$work/www/metrics")"
  wrk -t2 -c4 -d"${wrk_seconds}s" --latency "http://127.0.0.1:$exporter_port/metrics" \
    >"$raw/wrk_exporter.txt"

  cat >"$work/nginx/nginx.conf" <<EOF
# Written by bench/run.sh: serves the exporter's last /metrics response as a static file.
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 64; }
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/www;
    }
}
EOF
  nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
  local pid=$! tries=0
  started_pids+=("$pid")
  until curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$nginx_port/metrics"; do
    tries=$((tries + 1))
    ((tries < 50)) || { say "nginx did not start; see $work/nginx/error.log"; return 1; }
    sleep 0.2
  done
  wrk -t2 -c4 -d"${wrk_seconds}s" --latency "http://127.0.0.1:$nginx_port/metrics" \
    >"$raw/wrk_nginx.txt"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

# Stops the activity, waits for two more runs of the task rule, and compares.
check_exactness() {
  say "stopping the activity and comparing the task counters with a full count"
  touch "$work/churn.stop"
  wait "$churn_pid" || true
  local runs started=$SECONDS
  runs=$(runs_total tasks)
  while (($(runs_total tasks) < runs + 2)); do
    ((SECONDS - started < 300)) || { say "the task rule did not run twice within 300s"; return 1; }
    sleep 1
  done
  scrape end
  bench_pg_psql "$pg_dir" koji -f "$work/task_counts.sql" >"$raw/task_counts.csv"
  python3 "$bench_dir/exactness.py" "$root" "$raw/metrics_end.prom" "$raw/task_counts.csv" \
    "$raw/exactness.json"
}

main() {
  prepare_machine
  load_database
  start_churn
  measure_exporter_start
  measure_exporter_steady
  measure_http
  measure_sql_exporter
  measure_postgres_exporter
  measure_floor
  local exact=0
  check_exactness || exact=1
  memory "$exporter_pid" end
  fact loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
  mkdir -p "$results"
  python3 "$bench_dir/report.py" "$root" "$raw" "$results"
  return "$exact"
}

main
