// The local cluster's pod sandbox ("pause") process: no registry is reachable to pull the upstream
// pause image, so `make cluster` builds this one and imports it into containerd.
module queue-worker.local/cluster-pause

go 1.24.0
