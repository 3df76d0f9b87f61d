#!/usr/bin/env bash
# Starts and stops the benchmark's private PostgreSQL 15: one cluster in a directory of its
# own, listening on 127.0.0.1 and a Unix socket in that directory, with pg_stat_statements
# loaded. Durability is off (fsync, full_page_writes), which speeds up the bulk load and
# does not change what a read-only query costs. Meant to be sourced by bench/run.sh:
#
#   bench_pg_start DIR PORT SHARED_BUFFERS   e.g. bench_pg_start /tmp/kb 25560 256MB
#   bench_pg_psql DIR DATABASE [PSQL_ARG...]  psql as the superuser over the socket
#   bench_pg_stop DIR                         stops the server and removes DIR
#
# As root, the server runs as the user postgres (runuser), which must be able to write DIR.

BENCH_PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}

bench_pg_as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

bench_pg_start() {
  local dir=$1 port=$2 shared_buffers=$3
  if [[ ! -x $BENCH_PG_BINDIR/initdb ]]; then
    echo "bench: $BENCH_PG_BINDIR/initdb not found: install postgresql-15 or set PG_BINDIR" >&2
    return 1
  fi
  if [[ -e $dir ]]; then
    echo "bench: $dir already exists: remove it or stop the cluster in it first" >&2
    return 1
  fi
  mkdir -p -- "$dir"
  chmod 0755 "$dir"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$dir"
  fi
  bench_pg_as_owner "$BENCH_PG_BINDIR/initdb" -D "$dir/data" -U postgres --auth-local=trust \
    --auth-host=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    echo "bench: initdb failed in $dir/data (output above)" >&2
    return 1
  }
  bench_pg_as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF

# Written by bench/postgres.sh for the koji_exporter benchmark.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 40
shared_buffers = $shared_buffers
maintenance_work_mem = 512MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 8GB
checkpoint_timeout = 30min
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.max = 10000
pg_stat_statements.track = top
pg_stat_statements.track_utility = on
pg_stat_statements.track_planning = on
EOF
  echo "$port" >"$dir/port"
  bench_pg_as_owner "$BENCH_PG_BINDIR/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w \
    -t 120 >/dev/null || {
    tail -n 20 "$dir/postgres.log" >&2
    echo "bench: the server in $dir/data did not start (log above)" >&2
    return 1
  }
}

bench_pg_psql() {
  local dir=$1 database=$2
  shift 2
  "$BENCH_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$(<"$dir/port")" -U postgres \
    -d "$database" "$@"
}

bench_pg_stop() {
  local dir=$1
  [[ -f $dir/port ]] || return 0
  if bench_pg_as_owner "$BENCH_PG_BINDIR/pg_ctl" status -D "$dir/data" >/dev/null 2>&1; then
    bench_pg_as_owner "$BENCH_PG_BINDIR/pg_ctl" stop -D "$dir/data" -m fast -w -t 120 >/dev/null
  fi
  rm -rf -- "$dir"
}
