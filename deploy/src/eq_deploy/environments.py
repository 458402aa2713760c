"""Per-environment values (deploy/environments/<env>.yaml), read and checked once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from eq_deploy.errors import UsageError
from eq_deploy.settings import REPO_ROOT

ENVIRONMENTS_DIR = REPO_ROOT / "deploy" / "environments"
MANIFESTS_DIR = REPO_ROOT / "deploy" / "manifests"


@dataclass(frozen=True)
class Hpa:
    min_replicas: int
    max_replicas: int
    cpu_utilization: int


@dataclass(frozen=True)
class Environment:
    name: str
    namespace: str
    image_repository: str
    replicas: int
    service_type: str
    node_port: int | None
    smoke_url: str
    pdb: bool
    hpa: Hpa | None
    ingress_host: str
    ingress_class: str
    progress_deadline_seconds: int
    # New pods a rollout may start before old ones go (maxUnavailable stays 0): an int or
    # "N%" of the replicas. 1 adds one pod's worth of capacity at a time; "100%" starts the
    # whole new version at once, for a cluster that has the room (the rollout takes one
    # pod start instead of one per replica).
    max_surge: int | str
    resources: dict[str, dict[str, str]]
    # How long the deploy lock outlives a deploy that stopped renewing it (killed, or its
    # machine gone): the wait before the next deploy may take it over.
    lock_lease_seconds: int
    config: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    # "registry": pods pull the image (its digest is resolved there); "nodes": the image was
    # loaded straight into the nodes (kind load), so every node must have it.
    image_source: str = "registry"
    # The clusters this environment may change: (context glob, API server glob) pairs, ""
    # matching anything. A deploy elsewhere stops before any change (check_cluster).
    clusters: tuple[tuple[str, str], ...] = ()
    # post_deploy / on_failure: a command or a webhook URL (hooks.py).
    hooks: dict[str, str] = field(default_factory=dict)
    # Python base images `inv build` may start from, in order of preference (base_image.py).
    base_images: tuple[str, ...] = ()

    def check_cluster(self, context: str, server: str) -> None:
        """A UsageError when (context, server) is not one this environment pins."""
        from fnmatch import fnmatchcase

        for want_context, want_server in self.clusters:
            if fnmatchcase(context, want_context or "*") and fnmatchcase(
                server, want_server or "*"
            ):
                return
        pinned = ", ".join(
            " ".join(
                part for part in (f"context {c}" if c else "", f"server {s}" if s else "") if part
            )
            for c, s in self.clusters
        )
        raise UsageError(
            f"--env {self.name} deploys only to {pinned or 'no cluster'} "
            f"(deploy/environments/{self.name}.yaml clusters), not to context {context} "
            f"({server}): pass the --env meant for that cluster, or the --context meant for "
            f"{self.name}"
        )


def environment_names() -> list[str]:
    return sorted(p.stem for p in ENVIRONMENTS_DIR.glob("*.yaml"))


def load_environment(name: str) -> Environment:
    """Read deploy/environments/<name>.yaml; a UsageError names the file and the key."""
    path = ENVIRONMENTS_DIR / f"{name}.yaml"
    if not path.is_file():
        have = ", ".join(environment_names())
        shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        raise UsageError(f"--env {name!r}: no {shown} (have: {have})")
    rel = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{rel}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{rel}: must be a mapping")
    try:
        return _environment(name, raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{rel}: bad or missing value {exc}") from None


def _environment(name: str, raw: dict[str, Any]) -> Environment:
    service = raw["service"]
    service_type = str(service["type"])
    if service_type not in {"NodePort", "LoadBalancer", "ClusterIP"}:
        raise ValueError(f"'service.type' {service_type!r}")
    node_port = service.get("node_port")
    hpa_raw = raw.get("hpa")
    hpa = (
        Hpa(
            int(hpa_raw["min_replicas"]),
            int(hpa_raw["max_replicas"]),
            int(hpa_raw["cpu_utilization"]),
        )
        if hpa_raw
        else None
    )
    resources = {
        part: {str(k): str(v) for k, v in raw["resources"][part].items()}
        for part in ("requests", "limits")
    }
    return Environment(
        name=name,
        namespace=str(raw["namespace"]),
        image_repository=str(raw["image_repository"]),
        replicas=int(raw["replicas"]),
        service_type=service_type,
        node_port=int(node_port) if node_port is not None else None,
        smoke_url=str(raw.get("smoke_url") or ""),
        pdb=bool(raw.get("pdb", False)),
        hpa=hpa,
        ingress_host=str(raw.get("ingress_host") or ""),
        ingress_class=str(raw.get("ingress_class") or ""),
        progress_deadline_seconds=int(raw.get("progress_deadline_seconds", 180)),
        max_surge=_max_surge(raw.get("max_surge", 1)),
        resources=resources,
        lock_lease_seconds=_lock_lease(raw.get("lock_lease_seconds")),
        config={str(k): str(v) for k, v in (raw.get("config") or {}).items()},
        required=tuple(str(k) for k in raw.get("required") or ()),
        image_source=_image_source(raw.get("image_source", "registry")),
        clusters=_clusters(raw["clusters"]),
        hooks=_hooks(raw.get("hooks") or {}),
        base_images=tuple(str(image) for image in raw.get("base_images") or ()),
    )


def _hooks(raw: object) -> dict[str, str]:
    from eq_deploy.hooks import EVENTS

    if not isinstance(raw, dict) or set(raw) - set(EVENTS):
        raise ValueError(f"'hooks' {raw!r} (want post_deploy and/or on_failure)")
    return {str(k): str(v or "") for k, v in raw.items()}


def _clusters(raw: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("'clusters' (a list of {context: ..., server: ...})")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not (item.get("context") or item.get("server")):
            raise ValueError(f"'clusters' entry {item!r} (want context and/or server)")
        out.append((str(item.get("context") or ""), str(item.get("server") or "")))
    return tuple(out)


def _lock_lease(value: object) -> int:
    from eq_deploy.lock import LEASE_SECONDS, MIN_LEASE_SECONDS

    if value is None:
        return LEASE_SECONDS
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_LEASE_SECONDS:
        raise ValueError(
            f"'lock_lease_seconds' {value!r} (whole seconds, at least {MIN_LEASE_SECONDS})"
        )
    return value


def _max_surge(value: object) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, str) and re.fullmatch(r"[1-9][0-9]?%|100%", value):
        return value
    raise ValueError(f"'max_surge' {value!r} (pods, at least 1, or a percentage 1%-100%)")


def _image_source(value: object) -> str:
    if value not in {"registry", "nodes"}:
        raise ValueError(f"'image_source' {value!r} (registry or nodes)")
    return str(value)
