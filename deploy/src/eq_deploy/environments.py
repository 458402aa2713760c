"""Per-environment values (deploy/environments/<env>.yaml), read and checked once."""

from __future__ import annotations

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
    resources: dict[str, dict[str, str]]
    config: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    # "registry": pods pull the image (its digest is resolved there); "nodes": the image was
    # loaded straight into the nodes (kind load), so every node must have it.
    image_source: str = "registry"
    # Python base images `inv build` may start from, in order of preference (base_image.py).
    base_images: tuple[str, ...] = ()


def environment_names() -> list[str]:
    return sorted(p.stem for p in ENVIRONMENTS_DIR.glob("*.yaml"))


def load_environment(name: str) -> Environment:
    """Read deploy/environments/<name>.yaml; a UsageError names the file and the key."""
    path = ENVIRONMENTS_DIR / f"{name}.yaml"
    if not path.is_file():
        have = ", ".join(environment_names())
        raise UsageError(f"--env {name!r}: no {path.relative_to(REPO_ROOT)} (have: {have})")
    rel = path.relative_to(REPO_ROOT)
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
        resources=resources,
        config={str(k): str(v) for k, v in (raw.get("config") or {}).items()},
        required=tuple(str(k) for k in raw.get("required") or ()),
        image_source=_image_source(raw.get("image_source", "registry")),
        base_images=tuple(str(image) for image in raw.get("base_images") or ()),
    )


def _image_source(value: object) -> str:
    if value not in {"registry", "nodes"}:
        raise ValueError(f"'image_source' {value!r} (registry or nodes)")
    return str(value)
