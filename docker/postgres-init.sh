#!/usr/bin/env bash
# First-start script of the postgres service in docker/compose.yaml. The official image
# runs it from /docker-entrypoint-initdb.d while the data directory is new. It creates
# database koji with Koji's schema and generated demo data, and the role koji_exporter with
# the grants of deploy/sql/koji_exporter_role.sql and the password KOJI_EXPORTER_DB_PASSWORD.
# The files come from the repository, mounted under /koji.
set -euo pipefail

run_psql() {
  psql -X -q -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" "$@"
}

run_psql --dbname postgres -c "CREATE DATABASE koji"
run_psql --dbname koji -f /koji/koji_schema.sql
echo "postgres-init: generating the demo Koji data (about a minute)" >&2
run_psql --dbname koji -f /koji/demo_data.sql
run_psql --dbname koji -f /koji/koji_exporter_role.sql
# psql expands :'password' in a script read from standard input, not in -c.
run_psql --dbname koji -v password="$KOJI_EXPORTER_DB_PASSWORD" <<'SQL'
ALTER ROLE koji_exporter PASSWORD :'password';
VACUUM (ANALYZE);
SQL
