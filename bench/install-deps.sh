#!/usr/bin/env bash
# Installs the Debian 12 packages the benchmark needs besides those of
# scripts/install-deps.sh: the load generator, the static file server and the two SQL
# exporters it compares koji_exporter with. Runs apt-get only when a package is missing.
set -euo pipefail

# pg_stat_statements ships with postgresql-15, which scripts/install-deps.sh installs.
exec "$(dirname "${BASH_SOURCE[0]}")/../scripts/install-deps.sh" \
  wrk nginx-light prometheus-sql-exporter prometheus-postgres-exporter
