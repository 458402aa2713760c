"""An in-memory stand-in for the Kube facade, for fast tests of the deploy flows' ordering
and error paths. It is no Kubernetes: it keeps objects, enforces what the flows rely on
(immutable settings objects, resourceVersion preconditions, 409 on create) and plays the
controllers just enough: a migration Job runs `eq_backend migrate` against a pretend
database (each image has a migration chain), a Deployment rolls out at once unless its image
is marked as crashing. The same flows run against a real cluster in tests/e2e.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eq_deploy import podspec
from eq_deploy.kube import KubeError

Obj = dict[str, Any]
DIGEST = "sha256:" + "ab" * 32


@dataclass
class Build:
    """What an image does in this pretend cluster."""

    chain: dict[str, list[str]]  # rev -> [down, kind]
    head: str
    fails_migration: bool = False
    crashes: bool = False


@dataclass
class FakeCluster:
    builds: dict[str, Build] = field(default_factory=dict)  # tag -> build
    database: str = ""  # the pretend database's Alembic revision
    objects: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)  # pod name -> log
    writes: list[str] = field(default_factory=list)  # "verb Kind/name", in order
    context: str = "kind-flows"  # the kind environment's pin accepts kind-*
    server: str = "https://127.0.0.1:6443"
    # Job name -> how many reads it stays running for (a migration that takes a while).
    job_polls: dict[str, int] = field(default_factory=dict)
    # (write prefix, signal): send the signal to this process right after that write, the
    # way Ctrl-C or a CI cancellation lands while a call is under way.
    signal_after: tuple[str, int] | None = None
    # (write prefix, callback): run once right after that write (another actor stepping in).
    after_write: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    _version: int = 0

    # --- the facade -------------------------------------------------------------------------
    def version(self) -> str:
        return "v1.34.0-fake"

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        if kind == "Job" and name in self.job_polls:
            self.job_polls[name] -= 1
            if self.job_polls[name] <= 0:
                del self.job_polls[name]
                job = self.objects.get((kind, namespace or "", name))
                if job is not None:
                    self._run_job(job)
        found = self.objects.get((kind, namespace or "", name))
        return copy.deepcopy(found) if found is not None else None

    def items(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
    ) -> list[Obj]:
        if kind == "Node":
            return [self._node()]
        out = []
        for (k, ns, _), obj in self.objects.items():
            if k == kind and (namespace is None or ns == namespace) and _matches(obj, labels):
                out.append(copy.deepcopy(obj))
        return out

    def apply(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        key = _key(obj)
        live = self.objects.get(key)
        body = copy.deepcopy(obj)
        if live is not None and live.get("immutable") and live.get("data") != body.get("data"):
            raise KubeError(f"{key[0]} {key[2]}: field is immutable when `immutable` is set", 422)
        if dry_run:
            return body
        self.writes.append(f"apply {key[0]}/{key[2]}")
        # What server-side apply records: the manager owns the fields it sent (lists whole).
        fields = _fields({k: v for k, v in body.items() if k not in ("apiVersion", "kind")})
        body["metadata"]["managedFields"] = [
            {"manager": "eq-deploy", "operation": "Apply", "fieldsV1": fields}
        ]
        if live is not None:
            merged = copy.deepcopy(live)
            merged.update({k: v for k, v in body.items() if k != "metadata"})
            merged["metadata"].update(body["metadata"])
            if live.get("spec") != body.get("spec"):
                merged["metadata"]["generation"] = live["metadata"].get("generation", 1) + 1
            body = merged
        else:
            body["metadata"].setdefault("uid", str(uuid.uuid4()))
            body["metadata"]["generation"] = 1
        self._store(body)
        if key[0] == "Job" and key[2] not in self.job_polls:
            self._run_job(body)
        elif key[0] == "Deployment":
            self._roll_out(body)
        self._signal_after(f"apply {key[0]}/{key[2]}")
        return copy.deepcopy(body)

    def create(self, obj: Obj) -> Obj:
        key = _key(obj)
        if key in self.objects:
            raise KubeError(f"{key[0]} {key[2]} already exists", 409)
        self.writes.append(f"create {key[0]}/{key[2]}")
        body = copy.deepcopy(obj)
        self._store(body)
        return copy.deepcopy(body)

    def replace(self, obj: Obj) -> Obj:
        key = _key(obj)
        live = self.objects.get(key)
        if live is None:
            raise KubeError(f"{key[0]} {key[2]} not found", 404)
        wanted = obj["metadata"].get("resourceVersion")
        if wanted and wanted != live["metadata"]["resourceVersion"]:
            raise KubeError("conflict", 409)
        self.writes.append(f"replace {key[0]}/{key[2]}")
        body = copy.deepcopy(obj)
        self._store(body)
        return copy.deepcopy(body)

    def annotate(self, kind: str, name: str, namespace: str | None, annotations: Obj) -> Obj:
        live = self.objects[(kind, namespace or "", name)]
        live["metadata"].setdefault("annotations", {}).update(annotations)
        return copy.deepcopy(live)

    def delete(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        resource_version: str | None = None,
    ) -> bool:
        key = (kind, namespace or "", name)
        if key not in self.objects:
            return False
        self.writes.append(f"delete {kind}/{name}")
        del self.objects[key]
        if kind == "Job":
            for pod_key in [k for k, o in self.objects.items() if _matches(o, f"job-name={name}")]:
                del self.objects[pod_key]
        return True

    def pod_logs(self, name: str, namespace: str, **_: Any) -> str:
        return self.logs.get(name, "")

    def events_for(self, namespace: str, kind: str, name: str) -> list[Obj]:
        return []

    def _signal_after(self, write: str) -> None:
        if self.signal_after is not None and write.startswith(self.signal_after[0]):
            signum, self.signal_after = self.signal_after[1], None
            os.kill(os.getpid(), signum)
        for hook in list(self.after_write):
            if write.startswith(hook[0]):
                self.after_write.remove(hook)
                hook[1]()

    # --- helpers for tests ------------------------------------------------------------------
    def live_settings(self, namespace: str) -> tuple[str, str]:
        deployment = self.get("Deployment", "eq-backend", namespace)
        assert deployment is not None
        return podspec.settings_refs(deployment)

    def settings_objects(self, namespace: str) -> set[str]:
        return {
            f"{k}/{name}"
            for (k, ns, name), o in self.objects.items()
            if ns == namespace and "eq.deploy/settings" in (o["metadata"].get("labels") or {})
        }

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        import base64

        return base64.b64decode(self.objects[("Secret", namespace, name)]["data"][key]).decode()

    # --- the pretend controllers ------------------------------------------------------------
    def _store(self, obj: Obj) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        stamp = f"2026-01-01T{self._version // 3600:02d}:{self._version // 60 % 60:02d}:"
        obj["metadata"].setdefault("creationTimestamp", f"{stamp}{self._version % 60:02d}Z")
        self.objects[_key(obj)] = obj

    def _node(self) -> Obj:
        names = []
        for tag in self.builds:
            names += [f"docker.io/library/eq-backend:{tag}", f"eq-backend@{DIGEST}"]
        return {
            "metadata": {"name": "node"},
            "status": {
                "images": [{"names": names}],
                "nodeInfo": {"operatingSystem": "linux", "architecture": "amd64"},
            },
        }

    def _build(self, obj: Obj) -> Build:
        tag = podspec.image(obj).split("@")[0].rsplit(":", 1)[1]
        return self.builds[tag]

    def _run_job(self, job: Obj) -> None:
        """Run the Job's command at once: migrate, migrate --downgrade or db-check."""
        build = self._build(job)
        args = podspec.main_container(job).get("args") or []
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        code, log = 0, ""
        if args[3:4] == ["migrate"] and "--downgrade" in args:
            before, self.database = self.database, args[-1]
            log = f"alembic before: {before or 'none'}\nalembic head: {self.database}"
        elif args[3:4] == ["migrate"]:
            if build.fails_migration:
                code, log = 1, "error: migration failed: simulated"
            else:
                before, self.database = self.database, build.head
                log = (
                    f"alembic chain: {json.dumps(build.chain)}\n"
                    f"alembic before: {before or 'none'}\nalembic head: {build.head}"
                )
        elif args[3:4] == ["db-check"]:
            log = f"database revision: {self.database or 'none'}\nbuild head: {build.head}"
            code = 0 if not self.database or self.database in build.chain else 3
        pod = f"{name}-pod"
        self.logs[pod] = log
        self._store(
            {
                "kind": "Pod",
                "metadata": {"name": pod, "namespace": ns, "labels": {"job-name": name}},
                "status": {
                    "phase": "Succeeded" if code == 0 else "Failed",
                    "containerStatuses": [
                        {"name": "c", "state": {"terminated": {"exitCode": code}}}
                    ],
                },
            }
        )
        condition = "Complete" if code == 0 else "Failed"
        self.objects[_key(job)]["status"] = {
            "conditions": [{"type": condition, "status": "True", "reason": "Simulated"}]
        }

    def _roll_out(self, deployment: Obj) -> None:
        meta = deployment["metadata"]
        ns = meta["namespace"]
        replicas = deployment["spec"].get("replicas", 2)
        generation = meta["generation"]
        stored = self.objects[_key(deployment)]
        for pod_key in [k for k in self.objects if k[0] in ("Pod", "ReplicaSet") and k[1] == ns]:
            if not _matches(self.objects[pod_key], "job-name"):
                del self.objects[pod_key]
        if not self._build(deployment).crashes:
            stored["status"] = {
                "observedGeneration": generation,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": replicas,
            }
            return
        revision = str(generation)
        stored["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = (
            revision
        )
        stored["status"] = {
            "observedGeneration": generation,
            "replicas": replicas + 1,
            "updatedReplicas": 1,
            "availableReplicas": replicas,
        }
        labels = dict(deployment["spec"]["selector"]["matchLabels"])
        self._store(
            {
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"rs-{revision}",
                    "namespace": ns,
                    "labels": {**labels, "pod-template-hash": f"h{revision}"},
                    "annotations": {"deployment.kubernetes.io/revision": revision},
                    "ownerReferences": [{"uid": meta["uid"]}],
                },
            }
        )
        self._store(
            {
                "kind": "Pod",
                "metadata": {
                    "name": f"crash-{revision}",
                    "namespace": ns,
                    "labels": {**labels, "pod-template-hash": f"h{revision}"},
                },
                "status": {
                    "phase": "Running",
                    "containerStatuses": [
                        {
                            "name": "api",
                            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "boom"}},
                        }
                    ],
                },
            }
        )


def _key(obj: Obj) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace") or "", meta["name"])


def _matches(obj: Obj, selector: str | None) -> bool:
    if not selector:
        return True
    labels = obj["metadata"].get("labels") or {}
    for part in selector.split(","):
        name, _, value = part.partition("=")
        if name not in labels or (value and labels[name] != value):
            return False
    return True


def _fields(value: Any) -> Obj:
    """A FieldsV1 tree of `value`: maps recursed, anything else a leaf."""
    if isinstance(value, dict):
        return {f"f:{k}": _fields(v) for k, v in value.items() if k != "managedFields"}
    return {}
