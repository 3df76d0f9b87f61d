#!/usr/bin/env bash
# The benchmark at the small scale with short windows, for CI: checks that every step of
# bench/run.sh works (loading, koji_exporter, both full-count exporters, psql, wrk, nginx,
# exactness of the task counters) in a few minutes. It has no performance thresholds: it
# fails only when a step breaks or the task counters differ from a full count.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" small --smoke
