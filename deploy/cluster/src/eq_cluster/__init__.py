"""Where Kubernetes comes from: one provider interface over kind, a local cluster built
from source, and whatever the current kubeconfig points at.

Heavy modules (the kubernetes client, cryptography) are imported lazily so that
`inv --list` stays fast.
"""

from eq_cluster.provider import NODE_PORT, ClusterProvider, ClusterStatus
from eq_cluster.select import PROVIDER_ENV, provider_names, select_provider

__all__ = [
    "NODE_PORT",
    "PROVIDER_ENV",
    "ClusterProvider",
    "ClusterStatus",
    "provider_names",
    "select_provider",
]
