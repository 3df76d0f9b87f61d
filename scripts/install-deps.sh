#!/usr/bin/env bash
# Installs the Debian 12 packages needed to build, run and test koji_exporter, and the
# packages named as arguments (bench/install-deps.sh passes the benchmark's own).
# Runs apt-get only when a package is missing, so repeated runs are quick and offline.
set -euo pipefail

packages=(
  # build
  cmake g++ make pkg-config git
  # libraries
  libpqxx-dev libcpp-httplib-dev prometheus-cpp-dev libyaml-cpp-dev libfmt-dev doctest-dev
  zlib1g-dev
  # bcrypt for basic auth (libxcrypt), and certificates for the TLS tests
  libcrypt-dev openssl
  # the fuzz targets (scripts/fuzz.sh)
  clang-14 libclang-rt-14-dev
  # demo database and database tests
  postgresql-15 postgresql-client-15
  # promtool, for checking the exposition in tests
  prometheus
  # the README's curl examples
  curl ca-certificates
  # pgrep and kill for the demo and its smoke test
  procps
  # scripts/check-deploy.sh: YAML parsing and shell linting of the deployment files
  python3-yaml shellcheck
  "$@"
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
    echo "install-deps: missing packages: ${missing[*]}; run this script as root or install sudo" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# --no-install-recommends keeps the prometheus package from pulling node-exporter and more.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
