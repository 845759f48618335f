#!/usr/bin/env bash
# Headless Chromium and its matching chromedriver for the browser tests (tests/e2e/test_browser.py),
# from Debian's packages so selenium-manager never downloads a browser. Quiet when both are there.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "test-deps: install Chromium and chromedriver at /usr/bin (apt: chromium chromium-driver)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
echo "test-deps: installing chromium and chromium-driver"
# Refresh the package lists only when apt does not know the packages yet (fresh images have none).
if ! apt-cache show chromium chromium-driver >/dev/null 2>&1; then
  $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
fi
$sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
/usr/bin/chromium --version
