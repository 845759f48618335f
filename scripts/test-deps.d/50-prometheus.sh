#!/usr/bin/env bash
# Prometheus and promtool for the metrics and autoscaling tests (tests/metrics/, tests/autoscale/):
# Debian's package (2.42). The tests start their own server on 127.0.0.1 with their own config and
# storage, so the package's service is neither needed nor started here.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/apt-install.sh"
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then exit 0; fi
apt_install test-deps \
  "install Prometheus (prometheus and promtool on PATH) to run the metrics tests" prometheus
# The package may start its own service (on :9090) where an init system runs; the tests never use it.
prometheus --version 2>&1 | head -1
