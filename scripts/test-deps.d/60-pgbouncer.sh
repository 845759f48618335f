#!/usr/bin/env bash
# PgBouncer for the pooler tests and bench (tests/integration/test_pgbouncer.py, bench/pooler.py):
# Debian's package (1.18 on bookworm). The tests start their own process on a free loopback port
# with their own config, so the package's service is neither needed nor started here.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/apt-install.sh"
if command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; then exit 0; fi
apt_install test-deps \
  "install PgBouncer (pgbouncer on PATH or in /usr/sbin) to run the pooler tests" pgbouncer
# Where an init system runs, the package may start its own service on :6432; the tests never use it.
/usr/sbin/pgbouncer --version | head -1
