#!/usr/bin/env bash
# `make cluster`: a one-node Kubernetes 1.34 cluster of upstream components running as local
# processes on this machine (root, Debian), built from the Go module proxy by build.sh:
#   etcd, kube-apiserver (RBAC + Node authorization, PodSecurity and NodeRestriction admission),
#   kube-controller-manager (with the HPA controller at its default 15 s sync), kube-scheduler,
#   containerd + runc (Debian) with the CNI bridge plugin, kubelet, kube-proxy (iptables),
#   CoreDNS (cluster DNS), Traefik (ingress controller, IngressClass `traefik`), Prometheus (Debian)
#   scraping the pods, and prometheus-adapter registered as the external.metrics.k8s.io APIService.
# The kubeconfig is written to .cluster/kubeconfig. Every process's PID is in .cluster/pids/;
# `make cluster-down` (down.sh) stops exactly those.
#
# Addresses: everything stays on this machine. Pods get 10.244.0.0/24 on the bridge qw-cni0 (the
# host is 10.244.0.1, also the node IP); Service IPs (10.96.0.0/16) exist only as kube-proxy's NAT
# rules, routed onto that bridge; forwarding from the bridge to any other interface is dropped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/paths.sh"
export NODE_NAME=qw-node NODE_IP=10.244.0.1 SERVICE_IP=10.96.0.1
POD_CIDR=10.244.0.0/24 SERVICE_CIDR=10.96.0.0/16 BRIDGE=qw-cni0
API_PORT=${QW_CLUSTER_API_PORT:-6443}
PROM_PORT=${QW_CLUSTER_PROMETHEUS_PORT:-9390}
INGRESS_PORT=${QW_CLUSTER_INGRESS_PORT:-8480}
t0=$(date +%s)
say() { echo "cluster: $* ($(( $(date +%s) - t0 ))s)"; }
die() { echo "cluster: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (the kubelet and containerd manage mounts, cgroups and network namespaces)"
if [ -f "$state/pids/kube-apiserver" ] && kill -0 "$(cat "$state/pids/kube-apiserver")" 2>/dev/null; then
  die "already running (KUBECONFIG=$state/kubeconfig); make cluster-down first"
fi

# Leftovers of a cluster that was not stopped with `make cluster-down` (its processes ended with a
# session or a reboot): stale mounts, bridge, etcd data.
QW_CLUSTER_DIR=$state QW_CLUSTER_VAR=$var bash "$here/down.sh" >/dev/null 2>&1 || true
bash "$here/install-deps.sh"
bash "$here/build.sh"
mkdir -p "$state"/{pids,logs,config} "$var"
bash "$here/pki.sh" "$state/pki"
pki=$state/pki

# start NAME CMD...: runs CMD in its own session, logs to .cluster/logs/NAME.log, PID to pids/NAME.
start() {
  local name=$1; shift
  setsid "$@" >>"$state/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$state/pids/$name"
}
wait_for() {  # description seconds command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 2))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die "$what did not come up in ${secs}s; logs in $state/logs/"
}
kubeconfig() {  # file user cert key
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: queue-worker-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 <"$3")
    client-key-data: $(base64 -w0 <"$4")
contexts:
- name: queue-worker-local
  context: {cluster: queue-worker-local, user: $2}
current-context: queue-worker-local
EOF
  chmod 600 "$1"
}
cfg=$state/config
kubeconfig "$state/kubeconfig" admin "$pki/admin.crt" "$pki/admin.key"
kubeconfig "$cfg/controller-manager.kubeconfig" controller-manager "$pki/controller-manager.crt" "$pki/controller-manager.key"
kubeconfig "$cfg/scheduler.kubeconfig" scheduler "$pki/scheduler.crt" "$pki/scheduler.key"
kubeconfig "$cfg/kubelet.kubeconfig" kubelet "$pki/kubelet.crt" "$pki/kubelet.key"
kubeconfig "$cfg/kube-proxy.kubeconfig" kube-proxy "$pki/kube-proxy.crt" "$pki/kube-proxy.key"
export KUBECONFIG=$state/kubeconfig
kctl() { "$bin/kubectl" --kubeconfig "$state/kubeconfig" "$@"; }

say "network: bridge $BRIDGE $NODE_IP/24"
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
  ip addr add "$NODE_IP/24" dev "$BRIDGE"
fi
ip link set "$BRIDGE" up
# Service IPs are virtual (kube-proxy DNATs them); route them onto the pods' bridge so that nothing
# meant for them can ever leave the machine, even before kube-proxy has written its rules.
ip route replace "$SERVICE_CIDR" dev "$BRIDGE"
[ -f "$state/ip_forward.before" ] || sysctl -n net.ipv4.ip_forward >"$state/ip_forward.before"
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
iptables -C FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP 2>/dev/null ||
  iptables -I FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null ||
  iptables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT

say "etcd"
start etcd "$bin/etcd" --name qw --data-dir "$var/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster qw=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
  --quota-backend-bytes 2147483648 --log-level warn
wait_for etcd 30 curl -fsS http://127.0.0.1:2381/health

say "kube-apiserver"
# HPAScaleToZero (alpha): an HPA with minReplicas 0 on External metrics, i.e. scale-to-zero and
# back with the upstream controller (worker.autoscaling.minReplicas: 0; docs/kubernetes.md).
FEATURE_GATES=HPAScaleToZero=true
start kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers http://127.0.0.1:2379 \
  --bind-address 0.0.0.0 --secure-port "$API_PORT" --advertise-address "$NODE_IP" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/service-account.pub" \
  --service-account-signing-key-file "$pki/service-account.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --authorization-mode Node,RBAC \
  --enable-admission-plugins NodeRestriction,PodSecurity \
  --allow-privileged=true \
  --requestheader-client-ca-file "$pki/front-proxy-ca.crt" \
  --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$pki/front-proxy-client.crt" \
  --proxy-client-key-file "$pki/front-proxy-client.key" \
  --enable-aggregator-routing=true \
  --feature-gates "$FEATURE_GATES"
wait_for kube-apiserver 90 kctl get --raw /readyz

say "kube-controller-manager, kube-scheduler"
start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$cfg/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$cfg/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$cfg/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
  --service-account-private-key-file "$pki/service-account.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --controllers '*,-nodeipam' \
  --feature-gates "$FEATURE_GATES"
start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$cfg/scheduler.kubeconfig" \
  --authentication-kubeconfig "$cfg/scheduler.kubeconfig" \
  --authorization-kubeconfig "$cfg/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false

say "containerd"
mkdir -p "$var/containerd" "$cfg/cni"
cat >"$cfg/cni/10-qw-bridge.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "queue-worker-local",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$var/cni-ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
cat >"$cfg/containerd.toml" <<EOF
version = 2
root = "$var/containerd/root"
state = "/run/queue-worker-containerd"
[grpc]
  address = "/run/queue-worker-containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "local/pause:1"
  # This machine's root lacks CAP_SYS_RESOURCE: runc cannot lower a sandbox's oom_score_adj to -998
  # ("nsexec: failed to update /proc/self/oom_score_adj: Permission denied"), so keep scores at or
  # above containerd's own, as rootless setups do.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$cfg/cni"
EOF
start containerd containerd --config "$cfg/containerd.toml"
ctr() { command ctr --address /run/queue-worker-containerd/containerd.sock --namespace k8s.io "$@"; }
wait_for containerd 30 ctr version

say "images into containerd"
bash "$here/images.sh" "$state" | sed 's/^/  /'

say "kubelet"
cat >"$cfg/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix:///run/queue-worker-containerd/containerd.sock
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
failSwapOn: false
resolvConf: $cfg/resolv.conf
# Images here were imported, not pulled: garbage-collecting one would lose it for good.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
maxPods: 110
serializeImagePulls: false
EOF
echo "search cluster.local" >"$cfg/resolv.conf"
start kubelet "$bin/kubelet" --config "$cfg/kubelet.yaml" --kubeconfig "$cfg/kubelet.kubeconfig" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir "$var/kubelet" \
  --cert-dir "$var/kubelet-pki"
wait_for "node $NODE_NAME" 60 kctl get node "$NODE_NAME"

say "kube-proxy, CoreDNS"
cat >"$cfg/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $cfg/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
mode: iptables
bindAddress: 127.0.0.1
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Leave the machine's conntrack table size alone.
conntrack: {maxPerCore: 0}
EOF
start kube-proxy "$bin/kube-proxy" --config "$cfg/kube-proxy.yaml"
cat >"$cfg/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:8089
    ready 127.0.0.1:8189
    kubernetes cluster.local in-addr.arpa {
        kubeconfig $state/kubeconfig queue-worker-local
        pods insecure
    }
    cache 5
}
EOF
start coredns "$bin/coredns" -conf "$cfg/Corefile"
wait_for CoreDNS 30 curl -fsS http://127.0.0.1:8189/ready

bash "$here/monitoring.sh" "$state" | sed 's/^/  /'

say "Traefik (Kubernetes Ingress provider) on 127.0.0.1:$INGRESS_PORT"
kctl apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: traefik}
spec: {controller: traefik.io/ingress-controller}
EOF
KUBECONFIG=$state/kubeconfig start traefik "$bin/traefik" \
  --entryPoints.web.address="127.0.0.1:$INGRESS_PORT" --providers.kubernetesIngress=true \
  --providers.kubernetesIngress.ingressClass=traefik --ping=true \
  --entryPoints.traefik.address=127.0.0.1:8082 --log.level=INFO --log.noColor=true
wait_for Traefik 30 curl -fsS http://127.0.0.1:8082/ping
wait_for "node Ready" 60 kctl wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s

say "ready"
cat <<EOF

  export KUBECONFIG=$state/kubeconfig
  kubectl get nodes
  make test-cluster          # the cluster tests against it
  make cluster-down          # stops every process above

  Ingress (class traefik): http://127.0.0.1:$INGRESS_PORT   Prometheus: http://127.0.0.1:$PROM_PORT
  logs: $state/logs/
EOF
