"""A real single-node Kubernetes built from source, for machines where kind cannot run."""

from eq_deploy.clusters.local.cluster import LocalCluster
from eq_deploy.clusters.local.images import BASE_IMAGE
from eq_deploy.clusters.local.layout import CLUSTER_NAME, NODE_NAME, REGISTRY

__all__ = ["BASE_IMAGE", "CLUSTER_NAME", "NODE_NAME", "REGISTRY", "LocalCluster"]
