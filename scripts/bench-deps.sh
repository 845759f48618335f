#!/usr/bin/env bash
# What `make bench` needs beyond the test dependencies: wrk (HTTP load) from Debian, a Postgres
# (the same one the tests use) and PgBouncer. Quick when everything is there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export NEEDRESTART_SUSPEND=1
bash "$here/test-deps.d/10-postgres.sh"
bash "$here/test-deps.d/60-pgbouncer.sh"  # the pooler section
if ! command -v wrk >/dev/null; then
  if ! command -v apt-get >/dev/null; then
    echo "bench-deps: wrk is missing; install it with your package manager" >&2
    exit 1
  fi
  echo "bench-deps: installing wrk"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends wrk >/dev/null
fi
