#!/usr/bin/env bash
# Prometheus and promtool for the metrics and autoscaling tests (tests/metrics/, tests/autoscale/):
# Debian's package (2.42). The tests start their own server on 127.0.0.1 with their own config and
# storage, so the package's service is neither needed nor started here.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "test-deps: install Prometheus (prometheus and promtool on PATH) to run the metrics tests" >&2
  exit 1
fi
echo "test-deps: installing prometheus (Debian package)"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends prometheus >/dev/null
# The package may start its own service (on :9090) where an init system runs; the tests never use it.
prometheus --version 2>&1 | head -1
