#!/usr/bin/env bash
# Builds both images and prints their sizes and build times.
#   scripts/images.sh [TAG]                         # default tag: the version in services/__init__.py
#   BASE_IMAGE=local/python-base scripts/images.sh  # what CI uses (no registry reachable there)
#   REPO=registry.example.com/queue-worker scripts/images.sh 1.2.3 && docker push ...
# Images: ${REPO:-queue-worker}-api:TAG and ${REPO:-queue-worker}-worker:TAG (with REPO set:
# $REPO/api:TAG and $REPO/worker:TAG).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$root/services/__init__.py")}
base=${BASE_IMAGE:-}
args=(--network host)
[ -n "$base" ] && args+=(--build-arg "BASE_IMAGE=$base")
for component in api worker; do
  if [ -n "${REPO:-}" ]; then image="$REPO/$component:$tag"; else image="queue-worker-$component:$tag"; fi
  start=$(date +%s.%N)
  docker build "${args[@]}" -f "$root/Dockerfile.$component" -t "$image" "$root" >/dev/null
  end=$(date +%s.%N)
  size=$(docker image inspect -f '{{.Size}}' "$image")
  printf '%-45s built in %5.1fs  %4d MB\n' "$image" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')" $((size / 1000000))
done
