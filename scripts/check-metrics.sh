#!/usr/bin/env bash
# Checks an exposition file with `promtool check metrics`, allowing only the lint warnings
# listed below. promtool exits 3 for lint warnings and other codes for parse errors.
#
#   scripts/check-metrics.sh FILE
set -uo pipefail

# Known exceptions, each kept on purpose:
# - koji_enabled_hosts_count is the name CERN's Koji service and Red Hat's hub-polling
#   exporter use for this gauge; renaming it would break their dashboards and alerts.
allowed='^koji_enabled_hosts_count non-histogram and non-summary metrics should not have "_count" suffix$'

file=${1:?usage: check-metrics.sh FILE}
output=$(promtool check metrics <"$file" 2>&1)
status=$?
if [ "$status" -eq 0 ]; then
  exit 0
fi
if [ "$status" -ne 3 ]; then
  printf '%s\n' "$output" >&2
  echo "check-metrics: promtool could not parse $file (exit $status)" >&2
  exit 1
fi
unexpected=$(printf '%s\n' "$output" | grep -Ev "$allowed" || true)
if [ -n "$unexpected" ]; then
  printf '%s\n' "$unexpected" >&2
  echo "check-metrics: promtool reports lint problems in $file" >&2
  exit 1
fi
