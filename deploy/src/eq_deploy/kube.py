"""The one place that talks to the Kubernetes API.

Everything goes through `Kube`: server-side apply with one field manager, get/list/delete,
pod logs and events. The kubernetes client is imported here, lazily, so importing the deploy
tool (and `inv --list`) stays fast. Objects are plain dicts, as rendered.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from eq_deploy.errors import DeployError
from eq_deploy.render import REDACTED_ANNOTATION

FIELD_MANAGER = "eq-deploy"
Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    prefix: str  # "api/v1" or "apis/<group>/<version>"
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return self.prefix.removeprefix("api/").removeprefix("apis/")


KINDS: dict[str, Kind] = {
    "Namespace": Kind("api/v1", "namespaces", namespaced=False),
    "Node": Kind("api/v1", "nodes", namespaced=False),
    "ConfigMap": Kind("api/v1", "configmaps"),
    "Secret": Kind("api/v1", "secrets"),
    "Service": Kind("api/v1", "services"),
    "Pod": Kind("api/v1", "pods"),
    "EndpointSlice": Kind("apis/discovery.k8s.io/v1", "endpointslices"),
    "Event": Kind("api/v1", "events"),
    "Job": Kind("apis/batch/v1", "jobs"),
    "Deployment": Kind("apis/apps/v1", "deployments"),
    "ReplicaSet": Kind("apis/apps/v1", "replicasets"),
    "PodDisruptionBudget": Kind("apis/policy/v1", "poddisruptionbudgets"),
    "HorizontalPodAutoscaler": Kind("apis/autoscaling/v2", "horizontalpodautoscalers"),
    "Ingress": Kind("apis/networking.k8s.io/v1", "ingresses"),
    "Lease": Kind("apis/coordination.k8s.io/v1", "leases"),
}


class KubeError(DeployError):
    """An API call failed; `status` is the HTTP status (0 when the server was not reached)."""

    def __init__(self, message: str, status: int, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def path_for(kind: str, name: str | None = None, namespace: str | None = None) -> str:
    info = KINDS[kind]
    parts = ["", info.prefix]
    if info.namespaced:
        if namespace is None:
            raise ValueError(f"{kind} needs a namespace")
        parts += ["namespaces", quote(namespace, safe="")]
    parts.append(info.plural)
    if name is not None:
        parts.append(quote(name, safe=""))
    return "/".join(parts)


class Kube:
    """A connection to one cluster (a kubeconfig context), over HTTPS with httpx."""

    def __init__(self, context: str | None = None) -> None:
        import httpx

        from eq_deploy.kubeconfig import connect

        connection = connect(context)
        self.context: str = connection.context
        self.server: str = connection.server
        self._extensions = connection.request_extensions
        self._http = httpx.Client(
            base_url=connection.server,
            verify=connection.ssl_context,
            headers={"Accept": "application/json", **connection.headers},
            timeout=30,
        )

    # --- raw requests ---------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = 30,
        raw: bool = False,
    ) -> Any:
        import httpx

        params = {k: v for k, v in (query or {}).items() if v is not None}
        content = json.dumps(body).encode() if body is not None else None
        # Reads are retried over a dropped connection (an API server restart mid-wait should
        # not end a deploy); writes are not: their outcome would be unknown.
        attempts = 3 if method == "GET" else 1
        for attempt in range(attempts):
            try:
                response = self._http.request(
                    method,
                    path,
                    params=params,
                    content=content,
                    headers={"Content-Type": content_type},
                    timeout=timeout,
                    extensions=self._extensions,
                )
                break
            except httpx.HTTPError as exc:
                if isinstance(exc, httpx.TransportError) and attempt + 1 < attempts:
                    time.sleep(1 + attempt)
                    continue
                raise KubeError(
                    f"cluster unreachable at {self.server} (context {self.context}): "
                    f"{type(exc).__name__} {_short(exc)}".rstrip(),
                    status=0,
                ) from None
        if not response.is_success:
            raise KubeError(
                f"{method} {path}: {_status_message(response.content, response.status_code)}",
                status=response.status_code,
                reason=response.reason_phrase,
            )
        if raw:
            return response.text
        return response.json() if response.content else None

    # --- objects ----------------------------------------------------------------------------
    def version(self) -> str:
        info = self.request("GET", "/version", timeout=10)
        return str(info.get("gitVersion", "?"))

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        try:
            obj: Obj = self.request("GET", path_for(kind, name, namespace))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    def items(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
    ) -> list[Obj]:
        query = {"labelSelector": labels, "fieldSelector": fields}
        result = self.request("GET", path_for(kind, None, namespace), query=query)
        items: list[Obj] = result.get("items") or []
        return items

    def apply(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Server-side apply with the tool's field manager (taking over conflicting fields)."""
        annotations = obj.get("metadata", {}).get("annotations") or {}
        if annotations.get(REDACTED_ANNOTATION):
            raise DeployError(
                f"refusing to apply a redacted {obj['kind']} (render with redact_secrets=False)"
            )
        kind, meta = obj["kind"], obj["metadata"]
        query = {
            "fieldManager": FIELD_MANAGER,
            "force": "true",
            "dryRun": "All" if dry_run else None,
        }
        result: Obj = self.request(
            "PATCH",
            path_for(kind, meta["name"], meta.get("namespace")),
            query=query,
            body=obj,
            content_type="application/apply-patch+yaml",
        )
        return result

    def create(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        result: Obj = self.request(
            "POST",
            path_for(obj["kind"], None, meta.get("namespace")),
            body=obj,
            query={"fieldManager": FIELD_MANAGER},
        )
        return result

    def replace(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        result: Obj = self.request(
            "PUT",
            path_for(obj["kind"], meta["name"], meta.get("namespace")),
            body=obj,
            query={"fieldManager": FIELD_MANAGER},
        )
        return result

    def annotate(self, kind: str, name: str, namespace: str | None, annotations: Obj) -> Obj:
        """Merge `annotations` into a live object's metadata (a JSON merge patch)."""
        result: Obj = self.request(
            "PATCH",
            path_for(kind, name, namespace),
            body={"metadata": {"annotations": annotations}},
            content_type="application/merge-patch+json",
        )
        return result

    def delete(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        resource_version: str | None = None,
    ) -> bool:
        body: Obj = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if resource_version:
            body["preconditions"] = {"resourceVersion": resource_version}
        try:
            self.request("DELETE", path_for(kind, name, namespace), body=body)
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # --- pods -------------------------------------------------------------------------------
    def pod_logs(
        self,
        name: str,
        namespace: str,
        *,
        container: str | None = None,
        tail: int | None = 40,
        previous: bool = False,
    ) -> str:
        query: dict[str, Any] = {"container": container, "tailLines": tail}
        if previous:
            query["previous"] = "true"
        try:
            text: str = self.request(
                "GET", path_for("Pod", name, namespace) + "/log", query=query, raw=True
            )
        except KubeError as exc:
            return f"(no logs: {exc.message})"
        return text

    def events_for(self, namespace: str, kind: str, name: str) -> list[Obj]:
        fields = f"involvedObject.kind={kind},involvedObject.name={name}"
        events = self.items("Event", namespace, fields=fields)
        return sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")


def _status_message(data: Any, status: int) -> str:
    try:
        body = json.loads(data)
        return str(body.get("message") or f"HTTP {status}")
    except (TypeError, ValueError, AttributeError):
        return f"HTTP {status}"


def _short(exc: BaseException) -> str:
    text = str(exc)
    # urllib3 wraps the reason several times; the last part names the cause.
    for marker in ("Caused by ", "NewConnectionError"):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip("(): ")[:160]


def strip_server_fields(obj: Obj) -> Obj:
    """What is left of a live object when the server's bookkeeping is removed (for diffs and
    for re-applying a captured object)."""
    out = json.loads(json.dumps(obj))
    meta = out.get("metadata", {})
    for key in (
        "managedFields",
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
        "selfLink",
    ):
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    for key in list(annotations):
        if (
            key.startswith("deployment.kubernetes.io/")
            or key == "kubectl.kubernetes.io/last-applied-configuration"
        ):
            del annotations[key]
    if not annotations:
        meta.pop("annotations", None)
    out.pop("status", None)
    result: Obj = out
    return result
