"""Reading workloads the one way: the pod spec of a Deployment or Job, its main (first)
container, its environment literals and settings references, and status conditions.

Render, policy, waits and the deploy flows all read these shapes; keeping the paths here
means a change of shape (an init container, a second container) is made once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def pod_template(obj: Mapping[str, Any]) -> Obj | None:
    """`spec.template` of a workload, or None for other kinds (or a malformed object)."""
    if obj.get("kind") not in WORKLOAD_KINDS:
        return None
    template = (obj.get("spec") or {}).get("template")
    return template if isinstance(template, dict) else None


def pod_spec(obj: Mapping[str, Any]) -> Obj | None:
    """`spec.template.spec` of a workload, or None."""
    spec = (pod_template(obj) or {}).get("spec")
    return spec if isinstance(spec, dict) else None


def containers(obj: Mapping[str, Any]) -> list[Obj]:
    """The workload's (non-init) containers; empty for other kinds."""
    found: list[Obj] = (pod_spec(obj) or {}).get("containers") or []
    return found


def main_container(obj: Mapping[str, Any]) -> Obj:
    """The first container: the one that runs the backend. KeyError when there is none."""
    found = containers(obj)
    if not found:
        raise KeyError(f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}: no container")
    return found[0]


def image(obj: Mapping[str, Any]) -> str:
    return str(main_container(obj).get("image") or "")


def env_literals(obj: Mapping[str, Any]) -> dict[str, str]:
    """`env` entries with a literal value, by name (valueFrom entries are left out)."""
    return {
        str(e["name"]): str(e.get("value", ""))
        for e in main_container(obj).get("env") or []
        if "valueFrom" not in e
    }


def settings_refs(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(ConfigMap name, Secret name) the main container reads its settings from (`envFrom`);
    "" for a missing one."""
    config = secret = ""
    for source in main_container(obj).get("envFrom") or []:
        if "configMapRef" in source:
            config = config or str(source["configMapRef"].get("name") or "")
        if "secretRef" in source:
            secret = secret or str(source["secretRef"].get("name") or "")
    return config, secret


def set_settings_refs(obj: Mapping[str, Any], config: str, secret: str) -> None:
    """Point every container's `envFrom` at another ConfigMap and Secret (in place)."""
    for container in containers(obj):
        for source in container.get("envFrom") or []:
            if "configMapRef" in source:
                source["configMapRef"]["name"] = config
            if "secretRef" in source:
                source["secretRef"]["name"] = secret


def condition(obj: Mapping[str, Any], kind: str) -> Obj | None:
    """The status condition of type `kind`, or None."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            result: Obj = cond
            return result
    return None


def condition_true(obj: Mapping[str, Any], *kinds: str) -> bool:
    """True when any of the conditions `kinds` has status True."""
    return any((condition(obj, kind) or {}).get("status") == "True" for kind in kinds)


def job_complete(job: Mapping[str, Any]) -> bool:
    return condition_true(job, "Complete", "SuccessCriteriaMet")


def job_failed(job: Mapping[str, Any]) -> bool:
    return condition_true(job, "Failed", "FailureTarget")
