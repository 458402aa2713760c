"""Invoke entry point (`inv --list`). The tasks live in the eq_deploy package; this file only
exposes their collection so the library stays usable without invoke.

`inv cluster.*` comes from the dev-only eq_cluster package (deploy/cluster), installed by
./dev and nox. Where it is absent — a deploy-only install of eq-deploy — the deploy tasks
are listed and run all the same; only the cluster tasks are missing.
"""

from eq_deploy.tasks import namespace

try:
    from eq_cluster.tasks import namespace as cluster_namespace
except ModuleNotFoundError as missing:
    if missing.name != "eq_cluster":  # eq_cluster is there but broken: say so
        raise
else:
    namespace.add_collection(cluster_namespace, name="cluster")

__all__ = ["namespace"]
