#!/usr/bin/env bash
# The benchmark's scales: table sizes for bench/sql/*.sql, the task rate of the churn, and
# PostgreSQL's shared_buffers. Meant to be sourced; bench_scale SCALE sets the variables
# below or fails for an unknown scale.
#
#   small   a few thousand tasks, for the smoke test
#   cern    about the size of CERN's Koji: 2,700 tags, 8,200 packages, 300,000 tasks
#   fedora  about the size of Fedora's Koji: 10,000 tags, 40,000 packages, 20 million tasks,
#           2.5 million builds, 15 million tag listings
#
# churn_rate_millis is tasks created (and as many finished) per 1000 s; Fedora's hub
# creates one to two tasks a second.

# The variables are read by the scripts that source this file.
# shellcheck disable=SC2034
bench_scale() {
  local scale=$1
  case $scale in
    small)
      size_hosts=40 size_tags=150 size_packages=600 size_builds=3000 size_listings=12000
      size_tasks=5000 size_active=60 size_span_days=30
      churn_rate_millis=1000 shared_buffers=128MB
      ;;
    cern)
      size_hosts=300 size_tags=2700 size_packages=8200 size_builds=80000 size_listings=400000
      size_tasks=300000 size_active=600 size_span_days=90
      churn_rate_millis=300 shared_buffers=256MB
      ;;
    fedora)
      size_hosts=300 size_tags=10000 size_packages=40000 size_builds=2500000
      size_listings=15000000 size_tasks=20000000 size_active=3000 size_span_days=150
      churn_rate_millis=1500 shared_buffers=1GB
      ;;
    *)
      echo "bench: unknown scale \"$scale\": expected small, cern or fedora" >&2
      return 1
      ;;
  esac
}

# Prints the sizes as psql -v arguments.
bench_scale_psql_args() {
  local name
  for name in hosts tags packages builds listings tasks active span_days; do
    local variable=size_$name
    printf -- '-v\n%s=%s\n' "$name" "${!variable}"
  done
}
