// CoreDNS with only the plugins a cluster's Corefile uses: kubeadm's and kind's default
// Corefile (errors, health, ready, kubernetes, prometheus, forward, cache, loop, reload,
// loadbalance), and log, hosts, rewrite and template for a Corefile edited by hand.
// Upstream's main imports every plugin (core/plugin), which pulls the AWS, Azure, Google
// Cloud, Datadog and etcd clients into the build; these are most of its compile time.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/template"
)

func main() {
	coremain.Run()
}
