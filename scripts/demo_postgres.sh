#!/usr/bin/env bash
# Runs a throwaway PostgreSQL cluster filled with generated Koji data, for trying
# koji_exporter without a Koji database. Not for production: authentication is "trust".
#
# Usage as a command (or `source` it and call demo_pg_start, demo_pg_load and so on):
#   demo_postgres.sh start DIR [PORT]     initdb into DIR/data and start the server. It listens
#                                         only on the Unix socket DIR/.s.PGSQL.PORT. PORT
#                                         defaults to 55499 and only names the socket file.
#   demo_postgres.sh load DIR [PSQL_ARG...]
#                                         create database "koji", load the Koji schema and
#                                         scripts/demo_data.sql, then VACUUM ANALYZE. Extra
#                                         arguments go to psql, e.g. -v tasks=20000.
#   demo_postgres.sh activity DIR SECONDS run scripts/demo_activity.sql every SECONDS until
#                                         killed (SIGINT or SIGTERM)
#   demo_postgres.sh conninfo DIR         print the libpq conninfo of the read-only role
#                                         koji_exporter, e.g.
#                                         host=/tmp/demo port=55499 dbname=koji user=koji_exporter
#   demo_postgres.sh stop DIR             stop the activity loop and the server (fast
#                                         shutdown), then remove DIR
#
# Run as root, the script creates DIR owned by the postgres user and runs initdb and pg_ctl
# through `runuser -u postgres --`, because PostgreSQL refuses to run as root. Otherwise it
# runs them as the current user. initdb is taken from $PG_BINDIR, else PATH, else the newest
# /usr/lib/postgresql/*/bin. DIR must be a new or empty directory.
set -euo pipefail

readonly DEMO_PG_DEFAULT_PORT=55499
readonly DEMO_PG_SUPERUSER=postgres
readonly DEMO_PG_READER=koji_exporter
readonly DEMO_PG_DATABASE=koji
# start writes this file, so stop removes only directories that start created.
readonly DEMO_PG_STATE_FILE=koji-demo.state
DEMO_PG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly DEMO_PG_ROOT
# Named in messages that tell the user which command to run next.
readonly DEMO_PG_SCRIPT=$DEMO_PG_ROOT/scripts/demo_postgres.sh

demo_pg_fail() {
  echo "demo_postgres: $*" >&2
  return 1
}

# Sets demo_pg_bindir to the directory that contains initdb, pg_ctl and psql.
demo_pg_find_bindir() {
  if [[ -n ${demo_pg_bindir:-} ]]; then
    return 0
  fi
  local candidate=
  if [[ -n ${PG_BINDIR:-} ]]; then
    candidate=$PG_BINDIR
  elif command -v initdb >/dev/null; then
    candidate=$(dirname "$(command -v initdb)")
  else
    candidate=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  if [[ ! -x $candidate/initdb || ! -x $candidate/pg_ctl ]]; then
    demo_pg_fail "initdb not found in \$PG_BINDIR, PATH or /usr/lib/postgresql/*/bin:" \
      "install postgresql-15 (apt-get install postgresql-15) or set PG_BINDIR"
    return 1
  fi
  demo_pg_bindir=$candidate
}

# Runs a server-side command (initdb, pg_ctl) as the user that owns the cluster.
demo_pg_as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

demo_pg_psql_path() {
  if [[ -x $demo_pg_bindir/psql ]]; then
    echo "$demo_pg_bindir/psql"
  elif command -v psql >/dev/null; then
    command -v psql
  else
    demo_pg_fail "psql not found: install postgresql-client-15"
    return 1
  fi
}

# Prints the absolute form of DIR without requiring that it exists.
demo_pg_absolute_dir() {
  local dir=$1
  if [[ -z $dir ]]; then
    demo_pg_fail "missing directory argument"
    return 1
  fi
  realpath -m -- "$dir"
}

# Prints the port recorded by start, or fails when DIR contains no cluster made by start.
demo_pg_port() {
  local dir=$1
  local state=$dir/$DEMO_PG_STATE_FILE
  if [[ ! -f $state ]]; then
    demo_pg_fail "$dir contains no demo cluster ($state is missing): run \"$DEMO_PG_SCRIPT start $dir\" first"
    return 1
  fi
  sed -n 's/^port=//p' "$state"
}

# Quotes a conninfo value when it contains spaces, quotes or backslashes.
demo_pg_conninfo_value() {
  local value=$1
  if [[ $value =~ [[:space:]\'\\] || -z $value ]]; then
    value=${value//\\/\\\\}
    value=${value//\'/\\\'}
    printf "'%s'" "$value"
  else
    printf '%s' "$value"
  fi
}

demo_pg_conninfo() {
  local dir
  dir=$(demo_pg_absolute_dir "${1:-}")
  local port
  port=$(demo_pg_port "$dir")
  printf 'host=%s port=%s dbname=%s user=%s\n' "$(demo_pg_conninfo_value "$dir")" "$port" \
    "$DEMO_PG_DATABASE" "$DEMO_PG_READER"
}

# Runs psql as the superuser against DATABASE of the cluster in DIR; extra arguments follow.
demo_pg_psql() {
  local dir=$1 database=$2
  shift 2
  local port psql
  port=$(demo_pg_port "$dir")
  psql=$(demo_pg_psql_path)
  "$psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U "$DEMO_PG_SUPERUSER" \
    -d "$database" "$@"
}

demo_pg_prepare_dir() {
  local dir=$1
  if [[ -e $dir && ! -d $dir ]]; then
    demo_pg_fail "$dir exists and is not a directory: choose another path"
    return 1
  fi
  if [[ -d $dir && -n $(ls -A -- "$dir") ]]; then
    demo_pg_fail "$dir is not empty: stop the cluster in it with \"$DEMO_PG_SCRIPT stop $dir\"" \
      "or choose a new directory"
    return 1
  fi
  mkdir -p -- "$dir"
  chmod 0700 "$dir"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$dir"
    if ! runuser -u postgres -- test -w "$dir"; then
      rmdir -- "$dir" 2>/dev/null || true
      demo_pg_fail "user postgres cannot write to $dir (a parent directory is not" \
        "searchable by it): choose a directory under /tmp"
      return 1
    fi
  fi
}

# Appends the demo settings: socket only, little memory, no durability.
demo_pg_write_config() {
  local dir=$1 port=$2
  demo_pg_as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF

# Settings for the koji_exporter demo cluster (scripts/demo_postgres.sh).
listen_addresses = ''
port = $port
unix_socket_directories = '$dir'
unix_socket_permissions = 0700
max_connections = 20
shared_buffers = 64MB
maintenance_work_mem = 128MB
# Crash safety is pointless for a throwaway database and slows the bulk load.
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 2GB
EOF
}

demo_pg_start() {
  local dir port=${2:-$DEMO_PG_DEFAULT_PORT}
  dir=$(demo_pg_absolute_dir "${1:-}")
  if [[ ! $port =~ ^[0-9]+$ ]] || ((port < 1024 || port > 65535)); then
    demo_pg_fail "invalid port \"$port\": expected a number from 1024 to 65535"
    return 1
  fi
  # libpq and the server reject socket paths longer than 107 bytes.
  local socket="$dir/.s.PGSQL.$port"
  if ((${#socket} > 107)); then
    demo_pg_fail "socket path $socket is longer than 107 bytes: choose a shorter directory"
    return 1
  fi
  demo_pg_find_bindir
  demo_pg_prepare_dir "$dir"

  if ! demo_pg_as_owner "$demo_pg_bindir/initdb" -D "$dir/data" -U "$DEMO_PG_SUPERUSER" \
    --auth-local=trust --auth-host=reject -E UTF8 --no-locale \
    >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    demo_pg_fail "initdb failed in $dir/data (output above)"
    return 1
  fi
  demo_pg_write_config "$dir" "$port"
  printf 'port=%s\n' "$port" >"$dir/$DEMO_PG_STATE_FILE"

  if ! demo_pg_as_owner "$demo_pg_bindir/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" \
    -w -t 60 >/dev/null; then
    tail -n 20 "$dir/postgres.log" >&2 || true
    demo_pg_fail "the server in $dir/data did not start (log above, full log in" \
      "$dir/postgres.log); remove it with \"$DEMO_PG_SCRIPT stop $dir\""
    return 1
  fi
}

demo_pg_load() {
  local dir
  dir=$(demo_pg_absolute_dir "${1:-}")
  shift || true
  demo_pg_port "$dir" >/dev/null
  demo_pg_find_bindir
  local schema=$DEMO_PG_ROOT/tests/fixtures/koji_schema.sql
  local data=$DEMO_PG_ROOT/scripts/demo_data.sql
  local file
  for file in "$schema" "$data"; do
    if [[ ! -r $file ]]; then
      demo_pg_fail "cannot read $file: run this script from a complete koji_exporter checkout"
      return 1
    fi
  done

  demo_pg_psql "$dir" postgres -c "CREATE DATABASE $DEMO_PG_DATABASE" ||
    { demo_pg_fail "could not create database $DEMO_PG_DATABASE in $dir"; return 1; }
  demo_pg_psql "$dir" "$DEMO_PG_DATABASE" -f "$schema" ||
    { demo_pg_fail "loading the schema $schema failed"; return 1; }
  demo_pg_psql "$dir" "$DEMO_PG_DATABASE" "$@" -f "$data" ||
    { demo_pg_fail "generating the demo data with $data failed"; return 1; }
  # The exporter connects as a role that may only read, as on a production replica.
  demo_pg_psql "$dir" "$DEMO_PG_DATABASE" <<EOF ||
CREATE ROLE $DEMO_PG_READER LOGIN;
GRANT pg_monitor TO $DEMO_PG_READER;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO $DEMO_PG_READER;
ALTER ROLE $DEMO_PG_READER SET default_transaction_read_only = on;
VACUUM (ANALYZE);
EOF
    { demo_pg_fail "creating role $DEMO_PG_READER or VACUUM ANALYZE failed"; return 1; }
}

demo_pg_activity() {
  local dir interval=${2:-}
  dir=$(demo_pg_absolute_dir "${1:-}")
  if [[ ! $interval =~ ^[0-9]+([.][0-9]+)?$ ]] || [[ $interval =~ ^0*([.]0*)?$ ]]; then
    demo_pg_fail "invalid interval \"$interval\": expected a positive number of seconds"
    return 1
  fi
  demo_pg_find_bindir
  demo_pg_port "$dir" >/dev/null
  local step=$DEMO_PG_ROOT/scripts/demo_activity.sql
  if [[ ! -r $step ]]; then
    demo_pg_fail "cannot read $step: run this script from a complete koji_exporter checkout"
    return 1
  fi

  # stop reads this file to end the loop before it shuts the server down.
  echo "$BASHPID" >"$dir/activity.pid"
  # psql and sleep run in the background so that a signal ends the loop at once.
  local child=
  trap 'if [[ -n $child ]]; then kill "$child" 2>/dev/null || true; fi; exit 0' INT TERM
  while true; do
    demo_pg_psql "$dir" "$DEMO_PG_DATABASE" -f "$step" &
    child=$!
    if ! wait "$child"; then
      if ! demo_pg_as_owner "$demo_pg_bindir/pg_ctl" status -D "$dir/data" >/dev/null; then
        demo_pg_fail "the server in $dir is not running: activity stopped"
        return 1
      fi
      echo "demo_postgres: an activity step failed (message above); retrying" >&2
    fi
    sleep "$interval" &
    child=$!
    wait "$child"
  done
}

# Ends the activity loop recorded in DIR, if that process is still this script.
demo_pg_stop_activity() {
  local dir=$1
  local pid_file=$dir/activity.pid
  [[ -f $pid_file ]] || return 0
  local pid
  pid=$(<"$pid_file")
  if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" |
    grep -q 'demo_postgres.sh'; then
    kill "$pid" 2>/dev/null || true
  fi
  rm -f -- "$pid_file"
}

demo_pg_stop() {
  local dir
  dir=$(demo_pg_absolute_dir "${1:-}")
  if [[ ! -f $dir/$DEMO_PG_STATE_FILE ]]; then
    demo_pg_fail "$dir contains no demo cluster ($dir/$DEMO_PG_STATE_FILE is missing)," \
      "so nothing was stopped or removed"
    return 1
  fi
  demo_pg_find_bindir
  demo_pg_stop_activity "$dir"
  # pg_ctl status exits 0 only while the server runs; a stale postmaster.pid is ignored.
  if demo_pg_as_owner "$demo_pg_bindir/pg_ctl" status -D "$dir/data" >/dev/null 2>&1; then
    if ! demo_pg_as_owner "$demo_pg_bindir/pg_ctl" stop -D "$dir/data" -m fast -w -t 60 \
      >/dev/null; then
      demo_pg_fail "pg_ctl stop failed for $dir/data, so $dir was kept: see $dir/postgres.log"
      return 1
    fi
  fi
  rm -rf -- "$dir"
}

demo_pg_usage() {
  cat >&2 <<EOF
usage: $DEMO_PG_SCRIPT start DIR [PORT] | load DIR [PSQL_ARG...] | activity DIR SECONDS | conninfo DIR | stop DIR
EOF
}

demo_pg_main() {
  local command=${1:-}
  shift || true
  case $command in
    start) demo_pg_start "$@" ;;
    load) demo_pg_load "$@" ;;
    activity) demo_pg_activity "$@" ;;
    conninfo) demo_pg_conninfo "$@" ;;
    stop) demo_pg_stop "$@" ;;
    *)
      demo_pg_usage
      return 2
      ;;
  esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  demo_pg_main "$@"
fi
