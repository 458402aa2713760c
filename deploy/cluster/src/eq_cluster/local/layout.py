"""Where the local cluster keeps things on this machine, and its fixed network plan."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLUSTER_NAME = "eq-local"
NODE_NAME = "eq-local-node"
REGISTRY = "127.0.0.1:5000"
API_PORT = 6443

SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
DNS_SERVICE_IP = "10.96.0.10"
POD_CIDR = "10.244.0.0/16"
NODE_POD_SUBNET = "10.244.0.0/24"
CNI_BRIDGE = "eqcni0"
CLUSTER_DOMAIN = "cluster.local"

# Prefix of every iptables chain this cluster creates itself; kube-proxy's (KUBE-) and the
# CNI plugins' (CNI-) chains are removed on `down` as well.
IPTABLES_CHAIN = "EQ-CLUSTER"
OWNED_CHAIN_PREFIXES = ("EQ-CLUSTER", "KUBE-", "CNI-")


@dataclass(frozen=True)
class Layout:
    """Directories of the local cluster.

    cache: build outputs and the registry's storage; survives `down` so the next `up` is fast.
    state: the node's state (etcd, kubelet, containerd, certificates); removed by `down`.
    run: pid files and sockets; removed by `down`.
    logs: one log per process; kept after `down` so a failure can be read.
    """

    cache: Path
    state: Path
    run: Path
    logs: Path

    @classmethod
    def from_env(cls) -> Layout:
        return cls(
            cache=Path(os.environ.get("EQ_CLUSTER_CACHE", "/var/cache/eq-cluster")),
            state=Path(os.environ.get("EQ_CLUSTER_STATE", "/var/lib/eq-cluster")),
            run=Path(os.environ.get("EQ_CLUSTER_RUN", "/run/eq-cluster")),
            logs=Path(os.environ.get("EQ_CLUSTER_LOGS", "/var/log/eq-cluster")),
        )

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def kubeconfigs(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.kubeconfigs / "admin.conf"

    @property
    def config(self) -> Path:
        return self.state / "config"

    @property
    def cni_conf_dir(self) -> Path:
        return self.state / "cni" / "net.d"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd" / "containerd.sock"

    @property
    def buildkit_socket(self) -> Path:
        return self.run / "buildkit" / "buildkitd.sock"

    @property
    def pids(self) -> Path:
        return self.run / "pids"

    @property
    def registry_storage(self) -> Path:
        return self.cache / "registry"

    def component_bin(self, component: str, version: str, binary: str) -> Path:
        return self.cache / f"{component}-{version}" / "bin" / binary
