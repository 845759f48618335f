#!/usr/bin/env bash
# A local Postgres on 127.0.0.1:5432 if this machine has one installed (CI's does); otherwise the
# tests use TEST_DATABASE_URL or start one with testcontainers (Docker).
set -euo pipefail
if [ -n "${TEST_DATABASE_URL:-}" ]; then exit 0; fi
if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then exit 0; fi
if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then
  echo "test-deps: starting the local Postgres cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done
  echo "test-deps: Postgres did not come up on 127.0.0.1:5432" >&2; exit 1
fi
echo "test-deps: no local Postgres; tests will use testcontainers (needs Docker) or TEST_DATABASE_URL"
