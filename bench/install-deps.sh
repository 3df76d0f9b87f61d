#!/usr/bin/env bash
# Installs the Debian 12 packages the benchmark needs besides those of
# scripts/install-deps.sh: the load generator, the static file server and the two SQL
# exporters it compares koji_exporter with. Runs apt-get only when a package is missing.
set -euo pipefail

packages=(
  postgresql-15 postgresql-client-15 # pg_stat_statements ships with postgresql-15
  wrk nginx-light
  prometheus-sql-exporter prometheus-postgres-exporter
  python3-yaml curl procps
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "bench: missing packages: ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "bench: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
