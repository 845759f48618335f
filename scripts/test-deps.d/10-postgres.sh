#!/usr/bin/env bash
# A local Postgres on 127.0.0.1:5432 that `postgres` can log into without a password, which is what
# the tests, benchmarks and the local cluster use (tests/conftest.py: LOCAL_ADMIN_URL).
# - TEST_DATABASE_URL set: nothing to do, the tests use it.
# - Debian without a server (CI's fresh machines): installs postgresql and starts its cluster.
# - a server whose pg_hba.conf asks 127.0.0.1 for a password: on CI (CI=true, a throwaway machine)
#   a `trust` line for 127.0.0.1/32 is added and the server reloaded; elsewhere it says what to do
#   and exits non-zero, because changing a developer's authentication is not ours to decide.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/apt-install.sh"
if [ -n "${TEST_DATABASE_URL:-}" ]; then exit 0; fi

if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  if ! command -v apt-get >/dev/null; then
    echo "test-deps: no Postgres here: set TEST_DATABASE_URL (or install Docker for testcontainers)"
    exit 0
  fi
  apt_install --with-recommends test-deps "" postgresql
fi

version=$(ls /etc/postgresql | sort -V | tail -1)
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "test-deps: starting Postgres $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  pg_isready -q -h 127.0.0.1 -p 5432 || {
    echo "test-deps: Postgres did not come up on 127.0.0.1:5432" >&2; exit 1; }
fi

if psql -w -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then exit 0; fi
hba=/etc/postgresql/$version/main/pg_hba.conf
if [ "${CI:-}" = "true" ] && [ -w "$hba" ]; then
  echo "test-deps: CI machine: trusting 127.0.0.1/32 in $hba"
  sed -i '1i host all all 127.0.0.1/32 trust  # added by queue-worker scripts/test-deps.d (CI only)' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  sleep 1
  psql -w -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null && exit 0
fi
echo "test-deps: postgres@127.0.0.1:5432 needs a password; set TEST_DATABASE_URL=postgresql://postgres:PW@127.0.0.1:5432/postgres" >&2
exit 1
