#!/usr/bin/env bash
# Headless Chromium and its matching chromedriver for the browser tests (tests/e2e/test_browser.py),
# from Debian's packages so selenium-manager never downloads a browser. Quiet when both are there.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/apt-install.sh"
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi
apt_install test-deps "install Chromium and chromedriver at /usr/bin (apt: chromium chromium-driver)" \
  chromium chromium-driver
/usr/bin/chromium --version
