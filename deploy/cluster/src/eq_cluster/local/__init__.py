"""A real single-node Kubernetes built from source, for machines where kind cannot run."""

from eq_cluster.local.cluster import LocalCluster
from eq_cluster.local.images import BASE_IMAGE
from eq_cluster.local.layout import CLUSTER_NAME, NODE_NAME, REGISTRY

__all__ = ["BASE_IMAGE", "CLUSTER_NAME", "NODE_NAME", "REGISTRY", "LocalCluster"]
