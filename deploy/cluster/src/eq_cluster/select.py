"""Choosing a cluster provider: `EQ_CLUSTER=local|kind|current`, else kind when it can run."""

from __future__ import annotations

import os
import shutil
import subprocess

from eq_cluster.provider import ClusterError, ClusterProvider

PROVIDER_ENV = "EQ_CLUSTER"


def provider_names() -> tuple[str, ...]:
    return ("local", "kind", "current")


def kind_can_run() -> bool:
    """kind needs its binary and a working docker daemon (and images it can pull)."""
    if shutil.which("kind") is None or shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=30)
    return probe.returncode == 0


def select_provider(name: str | None = None) -> ClusterProvider:
    """The provider named by `name`, else by $EQ_CLUSTER, else kind if usable, else local."""
    chosen = name or os.environ.get(PROVIDER_ENV) or ("kind" if kind_can_run() else "local")
    if chosen == "local":
        from eq_cluster.local import LocalCluster

        return LocalCluster()
    if chosen == "kind":
        from eq_cluster.kind import KindCluster

        return KindCluster()
    if chosen == "current":
        from eq_cluster.current import CurrentKubeconfigCluster

        return CurrentKubeconfigCluster()
    raise ClusterError(f"unknown cluster provider {chosen!r}; choose one of {provider_names()}")
