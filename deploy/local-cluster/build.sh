#!/usr/bin/env bash
# Builds the local cluster's components from the Go module proxy at the versions pinned in
# deploy/local-cluster/go/*/go.mod (+ go.sum), into $QW_CACHE/cluster/bin:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl,
#   prometheus-adapter, coredns, traefik, pause.
# Module and build caches live in $QW_CACHE/go (outside the repo), so a second run takes seconds: a
# component is rebuilt only when its pinned module files (or the Go version) change.
# Usage: build.sh [component...]   (default: all)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/paths.sh"
export GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/build GOFLAGS=-modcacherw GOTOOLCHAIN=local
mkdir -p "$bin" "$GOMODCACHE" "$GOCACHE"
command -v go >/dev/null || { echo "build.sh: go is not installed (Go 1.24+ is needed)" >&2; exit 1; }

# component  module-dir  output  package...
components=(
  "etcd|etcd|etcd|go.etcd.io/etcd/server/v3"
  "kubernetes|kubernetes|.|k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl"
  "prometheus-adapter|prometheus-adapter|prometheus-adapter|sigs.k8s.io/prometheus-adapter/cmd/adapter"
  "coredns|coredns|coredns|."
  "traefik|traefik|traefik|github.com/traefik/traefik/v3/cmd/traefik"
  "pause|pause|pause|."
)
wanted=("$@")

start=$(date +%s)
for entry in "${components[@]}"; do
  IFS='|' read -r name dir out pkgs <<<"$entry"
  if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " == *" $name "* ]]; then continue; fi
  src=$here/go/$dir
  stamp=$bin/.$name.stamp
  want=$( (cat "$src"/go.mod "$src"/go.sum "$src"/*.go 2>/dev/null; sed -n "/ldflags=-s/,/^  fi/p" "$0") | sha256sum | cut -c1-16)-$(go env GOVERSION)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "build: $name is up to date"
    continue
  fi
  # shellcheck disable=SC2086  # $pkgs is a list of package paths
  total=$(cd "$src" && go list -deps $pkgs 2>/dev/null | wc -l)
  echo "build: $name ($total packages to compile when the caches are cold)"
  t0=$(date +%s)
  target=$bin/$out
  [ "$out" = "." ] && target=$bin/
  # -v names each package as it is compiled: count them for a progress line every 100.
  progress() {
    local n=0 line
    while IFS= read -r line; do
      case $line in
        "#"* | *.go:[0-9]* | go:*) echo "$line" ;;
        *) n=$((n + 1))
           if [ $((n % 100)) -eq 0 ]; then
             echo "build: $name $n/$total packages compiled ($(( $(date +%s) - t0 ))s)"
           fi ;;
      esac
    done
  }
  # shellcheck disable=SC2086
  ldflags=-s
  if [ "$name" = kubernetes ]; then
    # What the upstream release build stamps, so `kubectl version` and helm's kubeVersion checks
    # see v1.34.x instead of v0.0.0.
    v=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$src/go.mod")
    minor=$(echo "$v" | cut -d. -f2)
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags="$ldflags -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    done
  fi
  if ! (cd "$src" && go build -v -trimpath -ldflags="$ldflags" -o "$target" $pkgs 2>&1) | progress; then
    echo "build: $name failed" >&2
    exit 1
  fi
  echo "$want" >"$stamp"
  echo "build: $name done in $(( $(date +%s) - t0 ))s"
done
echo "build: components ready in $bin ($(( $(date +%s) - start ))s)"
