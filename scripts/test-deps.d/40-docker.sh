#!/usr/bin/env bash
# A Docker engine for the container tests (tests/e2e/test_containers.py): installs Debian's docker.io
# if dockerd is missing and starts dockerd in the background if it is not answering.
# dockerd never touches the firewall here (--iptables=false ...): every container runs with
# --network host and talks to 127.0.0.1 only. Its log: $QW_CACHE/dockerd.log, its pid: $QW_CACHE/dockerd.pid
# (stop it with: kill "$(cat ~/.cache/queue-worker/dockerd.pid)").
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/apt-install.sh"
cache=${QW_CACHE:-${HOME:-$(cd ~ && pwd)}/.cache/queue-worker}
mkdir -p "$cache"

if ! command -v dockerd >/dev/null; then
  apt_install --with-recommends test-deps \
    "no dockerd and no apt-get: install Docker to run the container tests" docker.io
fi

if docker info >/dev/null 2>&1; then exit 0; fi

echo "test-deps: starting dockerd (log: $cache/dockerd.log)"
# setsid: dockerd outlives this script and is not in the caller's process group.
setsid dockerd --iptables=false --ip-forward=false --ip-masq=false \
  >>"$cache/dockerd.log" 2>&1 </dev/null &
echo $! >"$cache/dockerd.pid"
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  if ! kill -0 "$(cat "$cache/dockerd.pid")" 2>/dev/null; then break; fi
  sleep 1
done
echo "test-deps: dockerd did not come up; last lines of $cache/dockerd.log:" >&2
tail -20 "$cache/dockerd.log" >&2
exit 1
