"""Deploy history, kept in the cluster (ConfigMap `eq-deploy-history` in the namespace) so
`history` and `rollback` work from any machine. Newest first.

An entry is a release: the applied Deployment (compressed; it names the image digest and the
content-addressed ConfigMap and Secret), a fingerprint of each setting (never a value) and
the Alembic revisions before and after. A rollback re-applies exactly the Deployment that
once ran, never re-rendered from today's files.

Retention keeps what a rollback needs: the last 10 successful releases plus the last 10
other entries (failed, interrupted), so a run of failing deploys never evicts the releases
one can go back to.
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
KEEP_SUCCEEDED = 10
KEEP_OTHER = 10
SUCCEEDED = "succeeded"
FAILED = "failed"
INTERRUPTED = "interrupted"  # SIGINT/SIGTERM; the reason names the step


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
    result: str  # succeeded | failed | interrupted
    alembic_head: str = ""  # the database's revision after this entry (its build's head)
    environment: str = ""
    reason: str = ""
    duration_seconds: float = 0.0
    deployment: str = field(default="", repr=False)  # gzip+base64 JSON of the Deployment
    alembic_before: str = ""  # the database's revision before this entry's migration
    config_map: str = ""  # the content-addressed settings objects the release reads
    secret: str = ""
    settings: dict[str, str] = field(default_factory=dict)  # key -> fingerprint, never a value
    # This build's migration scripts: revision -> [down revision, expand | contract].
    schema: dict[str, list[str]] = field(default_factory=dict, repr=False)
    rolled_back_from: int = 0  # for a rollback: the revision that served before it
    message: str = ""  # --message: why, in the deployer's words
    run_url: str = ""  # the CI run that made this entry (GitHub Actions)

    def deployment_object(self) -> dict[str, Any] | None:
        if not self.deployment:
            return None
        obj: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode(self.deployment)))
        return obj

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("deployment")
        out.pop("schema")
        return out

    @property
    def release(self) -> tuple[str, str, str]:
        """What identifies a release: image, ConfigMap, Secret."""
        return (self.image, self.config_map, self.secret)


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
    ordered = retained(entries)
    return {HISTORY_KEY: json.dumps([asdict(e) for e in ordered], indent=1)}


def retained(entries: list[Entry]) -> list[Entry]:
    """Newest first: the last KEEP_SUCCEEDED successful entries and the last KEEP_OTHER
    others. The newest success is always among them."""
    ordered = sorted(entries, key=lambda e: e.revision, reverse=True)
    ok = [e for e in ordered if e.result == SUCCEEDED][:KEEP_SUCCEEDED]
    other = [e for e in ordered if e.result != SUCCEEDED][:KEEP_OTHER]
    return sorted([*ok, *other], key=lambda e: e.revision, reverse=True)


def add_entry(entries: list[Entry], entry: Entry) -> list[Entry]:
    """A new list with `entry` first (its revision one past the newest), retention applied."""
    entry.revision = (max((e.revision for e in entries), default=0)) + 1
    return retained([entry, *entries])


def live_entry(entries: list[Entry], release: tuple[str, str, str]) -> Entry | None:
    """The newest successful entry of the release that serves now (image and settings)."""
    for entry in entries:
        if entry.result == SUCCEEDED and entry.release == release:
            return entry
    return None


def rollback_target(
    entries: list[Entry], live: tuple[str, str, str], to: str | None = None
) -> Entry:
    """The entry `rollback` goes to: the newest successful one with tag `to`, or by default the
    newest successful release that is not the live one and was not itself rolled back from
    (after v3 → v2, the next plain rollback goes to v1, not back to v3)."""
    ok = [e for e in entries if e.result == SUCCEEDED and e.deployment]
    if to is not None:
        for entry in ok:
            if entry.tag == to:
                return entry
        known = ", ".join(dict.fromkeys(e.tag for e in ok)) or "none"
        raise DeployError(f"--to {to}: no successful deploy of that tag in history (have: {known})")
    by_revision = {e.revision: e for e in entries}
    left = {
        by_revision[e.rolled_back_from].release
        for e in entries
        if e.action == "rollback" and e.result == SUCCEEDED and e.rolled_back_from in by_revision
    }
    for entry in ok:
        if entry.release != live and entry.release not in left:
            return entry
    raise DeployError("no previous successful deploy in history to roll back to")


def settings_changes(old: Entry, new: Entry) -> list[str]:
    """Which settings differ between two releases, by key, values never shown:
    `+ KEY` (added), `- KEY` (removed), `~ KEY` (changed)."""
    out = []
    for key in sorted(set(old.settings) | set(new.settings)):
        before, after = old.settings.get(key), new.settings.get(key)
        if before == after:
            continue
        out.append(f"{'+' if before is None else '-' if after is None else '~'} {key}")
    return out


def format_history(entries: list[Entry]) -> str:
    """A table, newest first; SETTINGS names the keys changed since the entry below."""
    if not entries:
        return "no deploys recorded"
    rows = [
        ("REV", "ACTION", "TAG", "RESULT", "AT", "BY", "ALEMBIC", "DIGEST", "SETTINGS", "REASON")
    ]
    for i, e in enumerate(entries):
        older = next((o for o in entries[i + 1 :] if o.settings), None)
        if not e.settings:
            changed = ""
        elif older is None:
            changed = f"{len(e.settings)} keys"
        else:
            changed = ",".join(settings_changes(older, e)).replace(" ", "") or "="
        alembic = e.alembic_head
        if e.alembic_before and e.alembic_before != e.alembic_head:
            alembic = f"{e.alembic_before[:7]}→{e.alembic_head}"
        rows.append(
            (
                str(e.revision),
                e.action,
                e.tag,
                e.result,
                e.at,
                e.by,
                alembic,
                e.digest.removeprefix("sha256:")[:12],
                changed,
                e.reason,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def find_entry(entries: list[Entry], ref: str) -> Entry:
    """An entry by revision number or tag (the newest of that tag)."""
    for entry in entries:
        if str(entry.revision) == ref or entry.tag == ref:
            return entry
    raise DeployError(f"{ref!r}: no history entry with that revision or tag")


def format_changes(entries: list[Entry], old_ref: str, new_ref: str) -> str:
    """`inv history --changes OLD..NEW`: which settings keys differ, values redacted."""
    old, new = find_entry(entries, old_ref), find_entry(entries, new_ref)
    head = f"settings of revision {old.revision} ({old.tag}) → {new.revision} ({new.tag}):"
    if not old.settings or not new.settings:
        return head + " not recorded for " + ("both" if old.settings == new.settings else "one")
    changes = settings_changes(old, new)
    lines = [f"  {c} (REDACTED)" for c in changes] or ["  no setting changed"]
    for kind, before, after in (
        ("ConfigMap", old.config_map, new.config_map),
        ("Secret", old.secret, new.secret),
    ):
        if before != after:
            lines.append(f"  {kind} {before} → {after}")
    return "\n".join([head, *lines])


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
