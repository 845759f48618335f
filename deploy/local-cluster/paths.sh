# Sourced by the local cluster's scripts (after setting $here to their folder): where everything
# lives. Each can be moved through the environment.
root=$(cd "$here/../.." && pwd)
cache=${QW_CACHE:-${HOME:-$(cd ~ && pwd)}/.cache/queue-worker}
bin=$cache/cluster/bin                                # built components (build.sh)
state=${QW_CLUSTER_DIR:-$root/.cluster}               # kubeconfig, pki, config, logs, pids
var=${QW_CLUSTER_VAR:-/var/lib/queue-worker-cluster}  # etcd, containerd, kubelet data (root-owned)
sock=/run/queue-worker-containerd/containerd.sock     # this cluster's own containerd
