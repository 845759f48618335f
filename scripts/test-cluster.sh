#!/usr/bin/env bash
# `make test-cluster`: the tests in tests/cluster/ talk only to $KUBECONFIG. Set, they run against
# that cluster (kind, k3d, ...: load the images first, see docs/kubernetes.md). Unset, the local
# cluster is brought up (make cluster) for the run and stopped after it, whatever the outcome.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
started=
if [ -z "${KUBECONFIG:-}" ]; then
  if [ ! -f .cluster/pids/kube-apiserver ] || ! kill -0 "$(cat .cluster/pids/kube-apiserver)" 2>/dev/null; then
    started=1
    trap './deploy/local-cluster/down.sh' EXIT
    ./deploy/local-cluster/up.sh
  fi
  export KUBECONFIG=$root/.cluster/kubeconfig
  export PATH=${QW_CACHE:-$HOME/.cache/queue-worker}/cluster/bin:$PATH
fi
echo "test-cluster: KUBECONFIG=$KUBECONFIG${started:+ (started for this run)}"
.venv/bin/pytest tests/cluster "$@"
