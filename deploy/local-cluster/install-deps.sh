#!/usr/bin/env bash
# Debian packages the local cluster runs on: containerd and runc (the container runtime), the CNI
# plugins (pod networking), iptables and conntrack (kube-proxy), Prometheus (the metrics the HPA
# scales on), openssl (certificates). Quick when they are all there.
set -euo pipefail
need=()
for pair in containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
  iptables:iptables conntrack:conntrack prometheus:prometheus openssl:openssl curl:curl \
  ip:iproute2; do
  cmd=${pair%%:*} pkg=${pair#*:}
  if [ "${cmd:0:1}" = / ]; then [ -e "$cmd" ] && continue; else command -v "$cmd" >/dev/null && continue; fi
  need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/apt-install.sh"
apt_install cluster "install ${need[*]} (Debian package names)" "${need[@]}"
