#!/usr/bin/env bash
# Smoke test of the README's run command: starts scripts/run.sh (the demo), waits until
# /metrics shows every default metric, checks the page with promtool, then sends Ctrl-C's
# SIGINT to the whole job and checks that nothing it started is left running.
# Bounded: at most about 5 minutes, most of it generating the demo data.
set -euo pipefail
set -m  # job control: the demo gets its own process group, as in a terminal

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log=$(mktemp "${TMPDIR:-/tmp}/koji-exporter-smoke.XXXXXX")
metrics=$log.metrics

expected_metrics=(
  koji_builders_update koji_hosts_enabled koji_hosts_ready koji_hosts_capacity koji_task_load
  koji_enabled_hosts_count koji_ready_hosts_per_channel koji_enabled_hosts_capacity_per_channel
  koji_enabled_hosts_task_load_per_channel koji_channel_enabled
  koji_waiting_tasks koji_in_progress_tasks koji_tasks_total koji_task_completions_total
  koji_task_succeed_total koji_task_errors_total
  koji_oldest_waiting_task_create_timestamp_seconds
  koji_packages_per_tag koji_builds_per_tag koji_builds_per_package
)

fail() {
  echo "smoke-demo: $*" >&2
  echo "--- output of scripts/run.sh ---" >&2
  cat "$log" >&2
  exit 1
}

"$root/scripts/run.sh" --web.listen-address=127.0.0.1:0 >"$log" 2>&1 &
job=$!
trap 'kill -TERM -- -$job 2>/dev/null || true' EXIT

port=""
for _ in $(seq 1 300); do
  port=$(sed -n 's/.*msg=listening .*port=\([0-9]*\).*/\1/p' "$log" | head -n 1)
  [ -n "$port" ] && break
  kill -0 "$job" 2>/dev/null || fail "scripts/run.sh exited before the exporter listened"
  sleep 1
done
[ -n "$port" ] || fail "the exporter did not start listening within 300 s"

missing=("${expected_metrics[@]}")
for _ in $(seq 1 60); do
  curl -sf "http://127.0.0.1:$port/metrics" >"$metrics" || true
  missing=()
  for metric in "${expected_metrics[@]}"; do
    grep -q "^$metric[{ ]" "$metrics" || missing+=("$metric")
  done
  [ "${#missing[@]}" -eq 0 ] && break
  sleep 1
done
[ "${#missing[@]}" -eq 0 ] || fail "metrics missing from the demo after 60 s: ${missing[*]}"
if grep -q 'koji_exporter_query_last_run_success{[^}]*} 0' "$metrics"; then
  fail "a default rule failed on the demo database: $(grep 'last_run_success{[^}]*} 0' "$metrics")"
fi
"$root/scripts/check-metrics.sh" "$metrics" || fail "promtool rejected the demo's /metrics"

demo_dir=$(sed -n 's/.*starting the demo database in \(.*\)$/\1/p' "$log" | head -n 1)
config_file=$(sed -n 's/.*msg="configuration loaded" config=\([^ ]*\).*/\1/p' "$log" | head -n 1)
[ -n "$demo_dir" ] || fail "scripts/run.sh did not say where the demo database is"
[ -n "$config_file" ] || fail "the exporter did not log its configuration file"
kill -INT -- -"$job"
for _ in $(seq 1 60); do
  kill -0 "$job" 2>/dev/null || break
  sleep 1
done
kill -0 "$job" 2>/dev/null && fail "scripts/run.sh still runs 60 s after SIGINT"
trap - EXIT
if pgrep -f -- "$demo_dir" >/dev/null; then
  fail "processes of the demo are still running: $(pgrep -af -- "$demo_dir")"
fi
if pgrep -f -- "$config_file" >/dev/null; then
  fail "the exporter of the demo is still running: $(pgrep -af -- "$config_file")"
fi
if [ -e "$demo_dir" ]; then
  fail "the demo directory $demo_dir was not removed"
fi
echo "smoke-demo: ok: $(grep -c '^koji_' "$metrics") koji samples on port $port; demo stopped cleanly"
rm -f "$log" "$metrics"
