#!/usr/bin/env bash
# `make cluster-down`: stops the local cluster that up.sh started and removes what it made, so the
# next `make cluster` starts empty. Processes are stopped by the PIDs in .cluster/pids/ only. Before
# the kubelet goes, every pod is deleted through the API so the kubelet itself stops the containers
# and tears down their network namespaces; containers it could not stop are killed through this
# cluster's own containerd socket. Logs stay in .cluster/logs/.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/paths.sh"
say() { echo "cluster-down: $*"; }
alive() { [ -f "$state/pids/$1" ] && kill -0 "$(cat "$state/pids/$1")" 2>/dev/null; }
stop() {  # name [seconds]: SIGTERM, then SIGKILL after the grace period
  local name=$1 grace=${2:-10} pid
  [ -f "$state/pids/$name" ] || return 0
  pid=$(cat "$state/pids/$name")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 $((grace * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { say "$name did not stop in ${grace}s: SIGKILL"; kill -KILL "$pid"; }
  fi
  rm -f "$state/pids/$name"
}
ctr() { command ctr --address "$sock" --namespace k8s.io "$@"; }

# Without PID files there is nothing of ours to stop, but leftovers of a cluster whose processes
# died with the machine's session (its mounts, bridge, data) are still removed below; up.sh relies
# on that before it starts.
mkdir -p "$state/pids"

# No controller may replace the pods deleted below.
stop traefik; stop prometheus-adapter; stop prometheus; stop pod-targets; stop kube-controller-manager; stop kube-scheduler
if alive kube-apiserver && alive kubelet; then
  say "deleting every pod (the kubelet stops their containers)"
  "$bin/kubectl" --kubeconfig "$state/kubeconfig" delete pods --all --all-namespaces \
    --grace-period=0 --force --wait=false >/dev/null 2>&1
  for _ in $(seq 1 60); do
    [ -z "$(ctr tasks ls -q 2>/dev/null)" ] && break
    sleep 0.5
  done
fi
stop kubelet; stop coredns
stop kube-proxy
# Its iptables rules outlive it (also those of a kube-proxy that died with an earlier session).
[ -x "$bin/kube-proxy" ] && "$bin/kube-proxy" --cleanup >/dev/null 2>&1
if [ -S "$sock" ]; then
  for task in $(ctr tasks ls -q 2>/dev/null); do
    say "killing container $task"
    ctr tasks kill -s SIGKILL "$task" >/dev/null 2>&1; sleep 0.2; ctr tasks rm -f "$task" >/dev/null 2>&1
  done
  ctr containers ls -q 2>/dev/null | xargs -r ctr containers rm >/dev/null 2>&1
fi
stop containerd
# The runc shims of this containerd outlive it by design; they name its socket on their command line.
for pid in $(pgrep -f "containerd-shim.*-address $sock" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
stop kube-apiserver; stop etcd

# Network namespaces the CNI plugin made and nothing uses any more.
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do
  [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && ip netns delete "$ns" 2>/dev/null
done
# The kubelet's own chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY), which kube-proxy --cleanup keeps.
for cmd in iptables ip6tables; do
  for table in filter nat mangle; do
    "$cmd" -t "$table" -S 2>/dev/null | awk '/^-A .* -j KUBE-/ {sub(/^-A/, "-D"); print}' |
      while read -r rule; do eval "$cmd -t $table $rule" 2>/dev/null; done
    for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'); do
      "$cmd" -t "$table" -F "$chain" 2>/dev/null; "$cmd" -t "$table" -X "$chain" 2>/dev/null
    done
  done
done
iptables -D FORWARD -i qw-cni0 ! -o qw-cni0 -j DROP 2>/dev/null
iptables -D FORWARD -i qw-cni0 -o qw-cni0 -j ACCEPT 2>/dev/null
ip link delete qw-cni0 2>/dev/null
if [ -f "$state/ip_forward.before" ]; then sysctl -qw "net.ipv4.ip_forward=$(cat "$state/ip_forward.before")"; fi

# Mounts under the kubelet's and containerd's directories (secrets, projected tokens, rootfs).
for dir in "$var" /run/queue-worker-containerd; do
  grep -o " $dir[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
done
rm -rf "$var" /run/queue-worker-containerd "$state/pids" "$state/pki" "$state/config" "$state/kubeconfig" \
  "$state/ip_forward.before"
left=$(pgrep -f "$bin/|--config $state/config/containerd.toml" 2>/dev/null | tr '\n' ' ')
if [ -n "$left" ]; then say "still running: $left" >&2; exit 1; fi
say "stopped; logs kept in $state/logs/"
