#!/usr/bin/env bash
# The autoscaling signal path of the local cluster (called by up.sh with the state dir):
#   Prometheus (Debian's) scrapes the API's and the workers' /metrics of the chart's pods, found
#   through the API server by pod_targets.py, with the project's recording rules (charts/queue-worker/files/prometheus/);
#   prometheus-adapter serves queue_worker_queue_backlog as an External metric, configured from the
#   same rules users give the upstream adapter chart (deploy/prometheus-adapter/values.yaml), and is
#   registered with the aggregation layer as v1beta1.external.metrics.k8s.io.
# Both run as host processes (their PIDs in .cluster/pids/ like the rest).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/paths.sh"
state=$1
NODE_IP=10.244.0.1
PROM_PORT=${QW_CLUSTER_PROMETHEUS_PORT:-9390}
ADAPTER_PORT=6444
cfg=$state/config
pki=$state/pki
kctl() { "$bin/kubectl" --kubeconfig "$state/kubeconfig" "$@"; }
start() {
  local name=$1; shift
  setsid "$@" >>"$state/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$state/pids/$name"
}

# Debian's Prometheus has no Kubernetes discovery: pod_targets.py writes the chart's pods (the
# API's "http" and each worker's "metrics" port, what the chart's ServiceMonitors select) to a file.
echo "[]" >"$cfg/pod-targets.json"
start pod-targets python3 "$here/pod_targets.py" "$bin/kubectl" "$state/kubeconfig" "$cfg/pod-targets.json"
cat >"$cfg/prometheus.yaml" <<EOF
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: [$root/charts/queue-worker/files/prometheus/recording-rules.yaml]
scrape_configs:
  - job_name: queue-worker
    file_sd_configs: [{files: ["$cfg/pod-targets.json"], refresh_interval: 5s}]
EOF
echo "prometheus on 127.0.0.1:$PROM_PORT"
mkdir -p "$var/prometheus"
start prometheus prometheus --config.file "$cfg/prometheus.yaml" \
  --storage.tsdb.path "$var/prometheus" --web.listen-address "127.0.0.1:$PROM_PORT" \
  --storage.tsdb.retention.time 1d
for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1 && break
  kill -0 "$(cat "$state/pids/prometheus")" 2>/dev/null ||
    { echo "prometheus exited; see $state/logs/prometheus.log" >&2; exit 1; }
  sleep 0.5
done

# The adapter's own config format is the upstream chart's `rules.external` under `externalRules`.
"$root/.venv/bin/python" - "$root/deploy/prometheus-adapter/values.yaml" "$cfg/adapter.yaml" <<'PY'
import sys, yaml
values = yaml.safe_load(open(sys.argv[1]))
yaml.safe_dump({"externalRules": values["rules"]["external"]}, open(sys.argv[2], "w"))
PY
echo "prometheus-adapter on $NODE_IP:$ADAPTER_PORT"
start prometheus-adapter "$bin/prometheus-adapter" \
  --secure-port "$ADAPTER_PORT" --bind-address "$NODE_IP" \
  --tls-cert-file "$pki/prometheus-adapter.crt" --tls-private-key-file "$pki/prometheus-adapter.key" \
  --lister-kubeconfig "$state/kubeconfig" \
  --authentication-kubeconfig "$state/kubeconfig" --authorization-kubeconfig "$state/kubeconfig" \
  --prometheus-url "http://127.0.0.1:$PROM_PORT/" --metrics-relist-interval 15s \
  --config "$cfg/adapter.yaml"

# Registration: a Service without selector whose EndpointSlice is the host process, and the
# APIService (the API server routes to the endpoint: --enable-aggregator-routing).
ca=$(base64 -w0 <"$pki/ca.crt")
kctl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: queue-worker-system}
---
apiVersion: v1
kind: Service
metadata: {name: prometheus-adapter, namespace: queue-worker-system}
spec:
  ports: [{name: https, port: 443, targetPort: $ADAPTER_PORT, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: prometheus-adapter-host
  namespace: queue-worker-system
  labels: {kubernetes.io/service-name: prometheus-adapter}
addressType: IPv4
ports: [{name: https, port: $ADAPTER_PORT, protocol: TCP}]
endpoints: [{addresses: ["$NODE_IP"], conditions: {ready: true}}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.external.metrics.k8s.io}
spec:
  group: external.metrics.k8s.io
  version: v1beta1
  service: {name: prometheus-adapter, namespace: queue-worker-system, port: 443}
  caBundle: $ca
  groupPriorityMinimum: 100
  versionPriority: 100
---
# What the upstream adapter chart grants: the HPA controller may read external metrics.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: queue-worker-external-metrics-reader}
rules:
  - apiGroups: [external.metrics.k8s.io]
    resources: ["*"]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: queue-worker-hpa-external-metrics}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: queue-worker-external-metrics-reader}
subjects: [{kind: ServiceAccount, name: horizontal-pod-autoscaler, namespace: kube-system}]
EOF
for _ in $(seq 1 120); do
  if kctl get --raw /apis/external.metrics.k8s.io/v1beta1 >/dev/null 2>&1; then
    echo "external.metrics.k8s.io is served"; exit 0
  fi
  sleep 0.5
done
echo "prometheus-adapter's APIService is not available; see $state/logs/prometheus-adapter.log" >&2
exit 1
