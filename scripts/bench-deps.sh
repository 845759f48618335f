#!/usr/bin/env bash
# What `make bench` needs beyond the test dependencies: wrk (HTTP load) from Debian, a Postgres
# (the same one the tests use) and PgBouncer. Quick when everything is there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export NEEDRESTART_SUSPEND=1
bash "$here/test-deps.d/10-postgres.sh"
. "$here/apt-install.sh"
bash "$here/test-deps.d/60-pgbouncer.sh"  # the pooler section
if ! command -v wrk >/dev/null; then
  apt_install bench-deps "wrk is missing; install it with your package manager" wrk
fi
