#!/usr/bin/env bash
# Installs and starts what the test suite needs on a Debian/Ubuntu machine, and says what is missing
# elsewhere. Idempotent: quick when everything is already there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for part in "$here"/test-deps.d/*.sh; do
  [ -e "$part" ] || continue
  bash "$part"
done
