// CoreDNS with only the plugins the local cluster's Corefile uses (deploy/local-cluster/up.sh):
// the upstream binary links every cloud DNS provider, which triples the build time for nothing.
// This is CoreDNS's documented way to choose plugins at compile time: import them, call Run.
package main

import (
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"

	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
