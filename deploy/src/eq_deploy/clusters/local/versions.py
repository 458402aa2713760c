"""The pinned component versions, read from deploy/cluster/versions.env (their one place)."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path


def assets_dir() -> Path:
    """deploy/cluster in the checkout (build script, wrapper modules, templates)."""
    override = os.environ.get("EQ_CLUSTER_ASSETS")
    if override:
        return Path(override)
    # deploy/src/eq_deploy/clusters/local/versions.py -> deploy/cluster (editable install)
    beside_source = Path(__file__).resolve().parents[4] / "cluster"
    if (beside_source / "versions.env").exists():
        return beside_source
    # Installed as a wheel: find the checkout from the working directory.
    for directory in [Path.cwd(), *Path.cwd().parents]:
        candidate = directory / "deploy" / "cluster"
        if (candidate / "versions.env").exists():
            return candidate
    raise FileNotFoundError("deploy/cluster/versions.env not found; set EQ_CLUSTER_ASSETS")


@cache
def versions() -> dict[str, str]:
    pinned: dict[str, str] = {}
    for line in (assets_dir() / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pinned[key.strip()] = value.strip()
    return pinned


def version(component: str) -> str:
    """Version of a component: kubernetes, etcd, coredns, buildkit, buildx, crictl."""
    return versions()[f"{component.upper()}_VERSION"]
