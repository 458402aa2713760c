"""Deploy history, kept in the cluster (ConfigMap `eq-deploy-history` in the namespace) so
`history` and `rollback` work from any machine. Newest first, capped at 10 like Helm.

Each entry holds the applied Deployment (compressed), so a rollback re-applies exactly the
Deployment that once ran, never re-rendered from today's files.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from eq_deploy.errors import DeployError

if TYPE_CHECKING:
    from eq_deploy.kube import Kube

HISTORY_NAME = "eq-deploy-history"
HISTORY_KEY = "history.json"
HISTORY_CAP = 10
SUCCEEDED = "succeeded"
FAILED = "failed"


@dataclass
class Entry:
    revision: int
    action: str  # deploy | rollback
    tag: str
    image: str
    digest: str
    git_sha: str
    at: str
    by: str
    result: str  # succeeded | failed
    alembic_head: str = ""
    environment: str = ""
    reason: str = ""
    duration_seconds: float = 0.0
    deployment: str = field(default="", repr=False)  # gzip+base64 JSON of the Deployment

    def deployment_object(self) -> dict[str, Any] | None:
        if not self.deployment:
            return None
        obj: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode(self.deployment)))
        return obj

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("deployment")
        return out


def pack_deployment(obj: dict[str, Any]) -> str:
    raw = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(gzip.compress(raw, mtime=0)).decode()


def parse_history(data: dict[str, str] | None) -> list[Entry]:
    """Entries from the ConfigMap's data, newest first; a DeployError names a corrupt record."""
    if not data or HISTORY_KEY not in data:
        return []
    try:
        raw = json.loads(data[HISTORY_KEY])
        if not isinstance(raw, list):
            raise TypeError("not a list")
        known = set(Entry.__dataclass_fields__)
        entries = [Entry(**{k: v for k, v in item.items() if k in known}) for item in raw]
    except (TypeError, ValueError) as exc:
        raise DeployError(f"ConfigMap {HISTORY_NAME}: unreadable history ({exc})") from None
    return sorted(entries, key=lambda e: e.revision, reverse=True)


def serialize_history(entries: list[Entry]) -> dict[str, str]:
    ordered = sorted(entries, key=lambda e: e.revision, reverse=True)[:HISTORY_CAP]
    return {HISTORY_KEY: json.dumps([asdict(e) for e in ordered], indent=1)}


def add_entry(entries: list[Entry], entry: Entry) -> list[Entry]:
    """A new list with `entry` first (its revision one past the newest), capped."""
    entry.revision = (max((e.revision for e in entries), default=0)) + 1
    return [entry, *entries][:HISTORY_CAP]


def rollback_target(entries: list[Entry], current_image: str, to: str | None = None) -> Entry:
    """The entry `rollback` goes to: the newest successful one with tag `to`, or by default the
    newest successful one that runs a different image than what serves now."""
    ok = [e for e in entries if e.result == SUCCEEDED and e.deployment]
    if to is not None:
        for entry in ok:
            if entry.tag == to:
                return entry
        known = ", ".join(dict.fromkeys(e.tag for e in ok)) or "none"
        raise DeployError(f"--to {to}: no successful deploy of that tag in history (have: {known})")
    for entry in ok:
        if entry.image != current_image:
            return entry
    raise DeployError("no previous successful deploy in history to roll back to")


def format_history(entries: list[Entry]) -> str:
    if not entries:
        return "no deploys recorded"
    rows = [("REV", "ACTION", "TAG", "RESULT", "AT", "BY", "ALEMBIC", "DIGEST", "REASON")]
    for e in entries:
        rows.append(
            (
                str(e.revision),
                e.action,
                e.tag,
                e.result,
                e.at,
                e.by,
                e.alembic_head,
                e.digest.removeprefix("sha256:")[:12],
                e.reason,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


# --- in the cluster ---------------------------------------------------------------------------
def read_history(kube: Kube, namespace: str) -> list[Entry]:
    cm = kube.get("ConfigMap", HISTORY_NAME, namespace)
    return parse_history((cm or {}).get("data"))


def record(kube: Kube, namespace: str, entry: Entry) -> Entry:
    """Add `entry` to the cluster's history (optimistic concurrency on the ConfigMap)."""
    for _ in range(5):
        cm = kube.get("ConfigMap", HISTORY_NAME, namespace)
        entries = add_entry(parse_history((cm or {}).get("data")), entry)
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": HISTORY_NAME,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "eq-deploy"},
            },
            "data": serialize_history(entries),
        }
        from eq_deploy.kube import KubeError

        try:
            if cm is None:
                kube.create(body)
            else:
                body["metadata"]["resourceVersion"] = cm["metadata"]["resourceVersion"]
                kube.replace(body)
        except KubeError as exc:
            if exc.status == 409:
                continue
            raise
        return entry
    raise DeployError(f"ConfigMap {HISTORY_NAME}: kept changing while recording; try again")
