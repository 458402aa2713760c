"""Pruning: what an earlier render applied and this one no longer has is deleted once a
deploy has succeeded (an HPA after `hpa: null`, the Ingress after the host was cleared), so
nothing the tool made keeps acting on its own. The inventory is a label the renderer puts on
every workload-side object; the settings objects (content-addressed, see releases.py) and the
migration Jobs (kept: the last `KEEP_JOBS`, each also removed by its ttlSecondsAfterFinished)
have their own rules. `inv destroy` removes all of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eq_deploy import podspec
from eq_deploy.render import INVENTORY_KINDS, INVENTORY_LABEL, SETTINGS_LABEL

if TYPE_CHECKING:
    from eq_deploy.kube import Kube

Obj = dict[str, Any]
KEEP_JOBS = 5
# Settings objects of the versions before content-addressed names (the releases issue).
LEGACY_SETTINGS = (("ConfigMap", "eq-backend-config"), ("Secret", "eq-backend-secrets"))
APP_JOBS = "app.kubernetes.io/name=eq-backend"


def stale_objects(kube: Kube, namespace: str, objects: list[Obj]) -> list[str]:
    """`Kind/name` of the inventory objects in the namespace that `objects` no longer has."""
    wanted = {(o["kind"], o["metadata"]["name"]) for o in objects}
    stale = []
    for kind in INVENTORY_KINDS:
        for live in kube.items(kind, namespace, labels=INVENTORY_LABEL):
            if (kind, live["metadata"]["name"]) not in wanted:
                stale.append(f"{kind}/{live['metadata']['name']}")
    return stale


def prune(kube: Kube, namespace: str, objects: list[Obj]) -> list[str]:
    """Delete the stale inventory objects and the migration Jobs beyond the last KEEP_JOBS
    (never a running one, nor the one of this deploy); return `Kind/name` of each."""
    deleted = []
    for label in stale_objects(kube, namespace, objects):
        kind, name = label.split("/", 1)
        if kube.delete(kind, name, namespace):
            deleted.append(label)
    own_jobs = {o["metadata"]["name"] for o in objects if o["kind"] == "Job"}
    for name in old_migration_jobs(kube, namespace, keep=own_jobs):
        if kube.delete("Job", name, namespace, propagation="Background"):
            deleted.append(f"Job/{name}")
    return deleted


def old_migration_jobs(kube: Kube, namespace: str, *, keep: set[str]) -> list[str]:
    """Finished migration Jobs older than the newest KEEP_JOBS."""
    jobs = [
        j
        for j in kube.items(
            "Job", namespace, labels=f"{APP_JOBS},app.kubernetes.io/component=migrate"
        )
        if podspec.job_complete(j) or podspec.job_failed(j)
    ]
    jobs.sort(key=lambda j: j["metadata"].get("creationTimestamp") or "", reverse=True)
    return [j["metadata"]["name"] for j in jobs[KEEP_JOBS:] if j["metadata"]["name"] not in keep]


def legacy_settings(kube: Kube, namespace: str) -> list[tuple[str, str]]:
    """The fixed-name ConfigMap/Secret older versions applied, where they still exist."""
    return [(k, n) for k, n in LEGACY_SETTINGS if kube.get(k, n, namespace) is not None]


def everything(kube: Kube, namespace: str) -> list[str]:
    """`Kind/name` of every object the tool made in the namespace (for `inv destroy`), the
    lock's Lease aside (the destroy holds it)."""
    from eq_deploy.history import HISTORY_NAME
    from eq_deploy.releases import SALT_SECRET

    found = [
        f"{k}/{o['metadata']['name']}"
        for k in INVENTORY_KINDS
        for o in kube.items(k, namespace, labels=INVENTORY_LABEL)
    ]
    found += [f"Job/{j['metadata']['name']}" for j in kube.items("Job", namespace, labels=APP_JOBS)]
    for kind in ("ConfigMap", "Secret"):
        found += [
            f"{kind}/{o['metadata']['name']}"
            for o in kube.items(kind, namespace, labels=SETTINGS_LABEL)
        ]
    found += [f"{k}/{n}" for k, n in legacy_settings(kube, namespace)]
    for kind, name in (("ConfigMap", HISTORY_NAME), ("Secret", SALT_SECRET)):
        if kube.get(kind, name, namespace) is not None:
            found.append(f"{kind}/{name}")
    return found
