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
command -v apt-get >/dev/null || { echo "cluster: install ${need[*]} (Debian package names)" >&2; exit 1; }
echo "cluster: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1  # never restart services (e.g. Postgres) mid-run
apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${need[@]}" >/dev/null
