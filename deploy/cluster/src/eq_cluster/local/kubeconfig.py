"""Kubeconfig files for the components and the user, and merging into ~/.kube/config."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def render(
    *, cluster: str, user: str, server: str, ca: Path, cert: Path, key: Path
) -> dict[str, Any]:
    """A self-contained kubeconfig (certificates embedded) with one context named `cluster`."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)},
            }
        ],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
        "preferences": {},
    }


def write(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(config, out, sort_keys=False)


def user_kubeconfig_path() -> Path:
    """The first file of $KUBECONFIG, else ~/.kube/config (where kind writes, too)."""
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0])
    return Path.home() / ".kube" / "config"


def _load(path: Path) -> dict[str, Any]:
    if path.exists():
        loaded = yaml.safe_load(path.read_text()) or {}
        if isinstance(loaded, dict):
            return loaded
    return {"apiVersion": "v1", "kind": "Config", "preferences": {}}


def _without(entries: list[dict[str, Any]] | None, name: str) -> list[dict[str, Any]]:
    return [entry for entry in entries or [] if entry.get("name") != name]


def merge_into_user_config(source: dict[str, Any], context: str) -> Path:
    """Add (or replace) `source`'s cluster, user and context and make the context current."""
    target_path = user_kubeconfig_path()
    target = _load(target_path)
    for section in ("clusters", "users", "contexts"):
        merged = target.get(section) or []
        for entry in source[section]:
            merged = [*_without(merged, entry["name"]), entry]
        target[section] = merged
    target["current-context"] = context
    write(target_path, target)
    return target_path


def remove_from_user_config(cluster: str, user: str, context: str) -> None:
    """Remove the entries `merge_into_user_config` added, as `kind delete cluster` does."""
    target_path = user_kubeconfig_path()
    if not target_path.exists():
        return
    target = _load(target_path)
    target["clusters"] = _without(target.get("clusters"), cluster)
    target["users"] = _without(target.get("users"), user)
    target["contexts"] = _without(target.get("contexts"), context)
    if target.get("current-context") == context:
        target["current-context"] = ""
    write(target_path, target)
