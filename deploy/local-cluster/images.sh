#!/usr/bin/env bash
# Puts the images the local cluster's pods run into its containerd (no registry is reachable here):
#   local/pause:1                the pod sandbox (go/pause, built by build.sh)
#   local/postgres:15            the chart's throwaway Postgres (images/postgres/)
#   queue-worker-api:TAG, queue-worker-worker:TAG   the project's images (scripts/images.sh), under
#                                the chart's appVersion and under the tag `next`, so the tests can
#                                `helm upgrade` to a new image tag.
# Built with the Docker engine (scripts/test-deps.d/40-docker.sh starts one) on the debootstrap base
# (41-python-base-image.sh), then `docker save | ctr import`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/paths.sh"
ctr() { command ctr --address /run/queue-worker-containerd/containerd.sock --namespace k8s.io "$@"; }

bash "$root/scripts/test-deps.d/40-docker.sh"
bash "$root/scripts/test-deps.d/41-python-base-image.sh"
base=${BASE_IMAGE:-local/python-base}
tag=$(sed -n 's/^appVersion: "\(.*\)"/\1/p' "$root/charts/queue-worker/Chart.yaml")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/pause"
cp "$bin/pause" "$work/pause/pause"
tar -C "$work/pause" -c pause | docker import -c 'ENTRYPOINT ["/pause"]' - local/pause:1 >/dev/null
docker build -q --network host --build-arg "BASE_IMAGE=$base" -t local/postgres:15 \
  "$here/images/postgres" >/dev/null
BASE_IMAGE=$base "$root/scripts/images.sh" "$tag"
for c in api worker; do docker tag "queue-worker-$c:$tag" "queue-worker-$c:next"; done

images=(local/pause:1 local/postgres:15 "queue-worker-api:$tag" queue-worker-api:next
  "queue-worker-worker:$tag" queue-worker-worker:next)
docker save "${images[@]}" -o "$work/images.tar"
ctr images import "$work/images.tar" >/dev/null
echo "imported into containerd: ${images[*]}"
