#!/usr/bin/env bash
# Certificates and keys of the local cluster, made with openssl into $1 (kept when they exist, so a
# restarted cluster keeps its identity). One CA signs every serving and client certificate; the
# front-proxy CA is the aggregation layer's (the API server -> prometheus-adapter hop).
# Sourced names: NODE_IP, NODE_NAME, SERVICE_IP (from up.sh).
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
[ -f .complete ] && exit 0

ca() {  # name subject
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$2" \
    -keyout "$1.key" -out "$1.crt" 2>/dev/null
}
cert() {  # name ca subject [subjectAltName]
  local ext=basicConstraints=CA:FALSE
  openssl req -newkey rsa:2048 -nodes -subj "$3" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$ext" "keyUsage=digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth,clientAuth" >"$1.ext"
  if [ -n "${4:-}" ]; then echo "subjectAltName=$4" >>"$1.ext"; fi
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 3650 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca queue-worker-local-ca
ca front-proxy-ca queue-worker-local-front-proxy-ca
openssl genrsa -out service-account.key 2048 2>/dev/null
openssl rsa -in service-account.key -pubout -out service-account.pub 2>/dev/null

k8s_names=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost
cert apiserver ca "/CN=kube-apiserver" "$k8s_names,IP:127.0.0.1,IP:$NODE_IP,IP:$SERVICE_IP"
cert apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client"
cert admin ca "/O=system:masters/CN=queue-worker-admin"
cert controller-manager ca "/CN=system:kube-controller-manager"
cert scheduler ca "/CN=system:kube-scheduler"
cert kubelet ca "/O=system:nodes/CN=system:node:$NODE_NAME" "DNS:$NODE_NAME,IP:$NODE_IP,IP:127.0.0.1"
cert kube-proxy ca "/CN=system:kube-proxy"
cert front-proxy-client front-proxy-ca "/CN=front-proxy-client"
cert prometheus-adapter ca "/CN=prometheus-adapter" \
  "DNS:prometheus-adapter.queue-worker-system.svc,IP:$NODE_IP,IP:127.0.0.1"
chmod 600 ./*.key
touch .complete
