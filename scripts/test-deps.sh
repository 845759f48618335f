#!/usr/bin/env bash
# Installs and starts what the test suite needs on a Debian/Ubuntu machine, and says what is missing
# elsewhere. Idempotent: quick when everything is already there.
set -euo pipefail
# Waits for another apt run instead of failing (DPkg::Lock::Timeout in each script); never lets
# needrestart restart services such as the Postgres the tests use.
export NEEDRESTART_SUSPEND=1
here=$(cd "$(dirname "$0")" && pwd)
for part in "$here"/test-deps.d/*.sh; do
  [ -e "$part" ] || continue
  bash "$part"
done
