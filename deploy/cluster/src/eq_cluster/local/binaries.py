"""The from-source binaries of the local cluster, built once per version into the cache."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

from eq_cluster.local.layout import Layout
from eq_cluster.local.versions import assets_dir
from eq_cluster.provider import ClusterError

# component -> binaries it provides (see deploy/cluster/build.sh)
COMPONENTS: dict[str, tuple[str, ...]] = {
    "etcd": ("etcd", "etcdctl"),
    "kubernetes": (
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
        "kubectl",
    ),
    "coredns": ("coredns",),
    "buildkit": ("buildkitd", "buildctl"),
    "buildx": ("docker-buildx",),
    "crictl": ("crictl",),
    "pause": ("pause",),
}


@cache
def component_version(component: str) -> str:
    """The cache key of a component: build.sh's own (the pinned version, plus the hash of
    our source where we write part of what is built: pause, CoreDNS's plugin list)."""
    result = subprocess.run(
        ["bash", str(assets_dir() / "build.sh"), "key", component],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise ClusterError(f"build.sh key {component}: {result.stderr.strip() or 'no key'}")
    return result.stdout.strip()


class Binaries:
    """Paths of built binaries; `ensure_built` runs the build script for missing ones."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def path(self, binary: str) -> Path:
        for component, binaries in COMPONENTS.items():
            if binary in binaries:
                return self.layout.component_bin(component, component_version(component), binary)
        raise KeyError(binary)

    def missing_components(self) -> list[str]:
        return [
            component
            for component in COMPONENTS
            if not (
                self.layout.cache / f"{component}-{component_version(component)}" / ".complete"
            ).exists()
        ]

    def ensure_built(self) -> None:
        missing = self.missing_components()
        if not missing:
            return
        script = assets_dir() / "build.sh"
        env_cache = {"EQ_CLUSTER_CACHE": str(self.layout.cache)}
        result = subprocess.run(
            ["bash", str(script), *missing],
            env={**os.environ, **env_cache},
            check=False,
        )
        if result.returncode != 0:
            still = self.missing_components()
            logs = ", ".join(
                str(self.layout.cache / "logs" / f"{c}-{component_version(c)}.log") for c in still
            )
            raise ClusterError(f"building {', '.join(still)} failed; logs: {logs}")
