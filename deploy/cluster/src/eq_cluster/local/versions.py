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
    # eq_cluster is only ever installed editable from the checkout (./dev, nox), so the
    # assets are three levels up: deploy/cluster/src/eq_cluster/local/versions.py.
    beside_source = Path(__file__).resolve().parents[3]
    if (beside_source / "versions.env").exists():
        return beside_source
    raise FileNotFoundError(f"{beside_source}/versions.env not found; set EQ_CLUSTER_ASSETS")


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
