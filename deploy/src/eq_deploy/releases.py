"""What makes a release beyond its image: the content-addressed settings objects (their
fingerprints, their garbage collection) and the schema rule that says when the code may go
back over a database migration.

The schema rule: every Alembic revision declares itself `expand` (the release before it runs
on the schema it produces: an added nullable column, a new table or index) or `contract`
(it does not: a dropped or renamed column). The migration Job prints its build's chain
(`alembic chain: {rev: [down_revision, kind]}`) and history keeps it, so a rollback can walk
from the database's revision down to the target's head and stop at the first contract.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eq_deploy.errors import DeployError
from eq_deploy.podspec import settings_refs
from eq_deploy.render import SETTINGS_LABEL

if TYPE_CHECKING:
    from eq_deploy.history import Entry
    from eq_deploy.kube import Kube

Obj = dict[str, Any]
SALT_SECRET = "eq-deploy-fingerprint-salt"  # noqa: S105 - a name, not a value
ALEMBIC_HEAD = re.compile(r"^alembic head:\s*(\S+)", re.MULTILINE)
ALEMBIC_BEFORE = re.compile(r"^alembic before:\s*(\S+)", re.MULTILINE)
ALEMBIC_CHAIN = re.compile(r"^alembic chain:\s*(\{.*\})\s*$", re.MULTILINE)
DATABASE_REVISION = re.compile(r"^database revision:\s*(\S+)", re.MULTILINE)
EXPAND, CONTRACT = "expand", "contract"
Chain = dict[str, list[str]]  # revision -> [down revision ("" for the first), kind]


# --- settings -----------------------------------------------------------------------------------
def fingerprint_salt(kube: Kube, namespace: str) -> bytes:
    """The namespace's fingerprint key, created on first use. It lives in a Secret: whoever
    may read it may read the settings themselves, so the fingerprints in the (ConfigMap)
    history reveal nothing to a reader of ConfigMaps only."""
    import base64

    from eq_deploy.kube import KubeError

    for _ in range(2):
        found = kube.get("Secret", SALT_SECRET, namespace)
        if found is not None:
            return base64.b64decode((found.get("data") or {}).get("salt", ""))
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": SALT_SECRET,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "eq-deploy"},
            },
            "type": "Opaque",
            "immutable": True,
            "data": {"salt": base64.b64encode(secrets.token_bytes(32)).decode()},
        }
        try:
            kube.create(body)
        except KubeError as exc:
            if exc.status != 409:  # created by a concurrent deploy: read theirs
                raise
    raise DeployError(f"Secret {namespace}/{SALT_SECRET}: cannot be read or created")


def referenced_settings(entries: Iterable[Entry], live: Obj | None) -> set[tuple[str, str]]:
    """(kind, name) of every settings object a retained history entry or the live Deployment
    refers to."""
    keep: set[tuple[str, str]] = set()
    for entry in entries:
        if entry.config_map:
            keep.add(("ConfigMap", entry.config_map))
        if entry.secret:
            keep.add(("Secret", entry.secret))
    if live is not None:
        config, secret = settings_refs(live)
        keep |= {("ConfigMap", config), ("Secret", secret)}
    return keep


def collect_garbage(kube: Kube, namespace: str, keep: set[tuple[str, str]]) -> list[str]:
    """Delete the content-addressed ConfigMaps and Secrets in `keep`'s complement; return
    `Kind/name` of each one deleted."""
    from eq_deploy.prune import legacy_settings

    deleted = []
    for kind in ("ConfigMap", "Secret"):
        for obj in kube.items(kind, namespace, labels=SETTINGS_LABEL):
            name = obj["metadata"]["name"]
            if (kind, name) not in keep and kube.delete(kind, name, namespace):
                deleted.append(f"{kind}/{name}")
    # The fixed-name ones of older versions go too once nothing refers to them.
    for kind, name in legacy_settings(kube, namespace):
        if (kind, name) not in keep and kube.delete(kind, name, namespace):
            deleted.append(f"{kind}/{name}")
    return deleted


def missing_settings(kube: Kube, namespace: str, deployment: Obj) -> list[str]:
    """`Kind/name` of the settings objects `deployment` reads that no longer exist."""
    config, secret = settings_refs(deployment)
    return [
        f"{kind}/{name}"
        for kind, name in (("ConfigMap", config), ("Secret", secret))
        if name and kube.get(kind, name, namespace) is None
    ]


# --- schema ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MigrationReport:
    """What the migration Job printed."""

    head: str
    before: str = ""
    chain: Chain | None = None


def parse_migration_log(logs: str) -> MigrationReport | None:
    heads = ALEMBIC_HEAD.findall(logs)
    if not heads:
        return None
    before = ALEMBIC_BEFORE.findall(logs)
    chain: Chain | None = None
    found = ALEMBIC_CHAIN.findall(logs)
    if found:
        try:
            raw = json.loads(found[-1])
            chain = {str(k): [str(v[0] or ""), str(v[1])] for k, v in raw.items()}
        except (ValueError, TypeError, IndexError, AttributeError):
            chain = None
    return MigrationReport(heads[-1], before[-1] if before else "", chain)


def merged_chain(chains: Iterable[Mapping[str, list[str]]]) -> Chain:
    out: Chain = {}
    for chain in chains:
        out.update(chain)
    return out


@dataclass(frozen=True)
class SchemaVerdict:
    """Whether code of a build with head `target` may run on a database at `current`."""

    current: str
    target: str
    path: tuple[tuple[str, str], ...]  # (revision, kind) from current down to target
    blocking: str = ""  # the first contract revision on the way
    unknown: str = ""  # a revision whose place or kind history does not know

    @property
    def ok(self) -> bool:
        return not self.blocking and not self.unknown

    def explain(self, tag: str) -> str:
        """One line: why the code of `tag` may not go back, and the two ways out."""
        if self.unknown:
            return (
                f"the database is at {self.current} and {tag} expects {self.target}, but "
                f"history does not know whether revision {self.unknown} is expand or contract; "
                "roll forward, or inv rollback --downgrade (--force skips the check)"
            )
        return (
            f"revision {self.blocking} is a contract migration ({tag} cannot run on the schema "
            f"it produced; the database is at {self.current}, {tag} expects {self.target}): "
            f"roll forward with a fix, or inv rollback --downgrade to run its down migration"
        )


def schema_verdict(current: str, target: str, chain: Mapping[str, list[str]]) -> SchemaVerdict:
    """Walk from `current` down to `target`; every revision on the way must be an expand."""
    path: list[tuple[str, str]] = []
    rev = current
    seen = set()
    while rev != target:
        if not rev or rev in seen or rev not in chain:
            return SchemaVerdict(current, target, tuple(path), unknown=rev or current or "?")
        seen.add(rev)
        down, kind = chain[rev]
        path.append((rev, kind))
        if kind != EXPAND:
            return SchemaVerdict(current, target, tuple(path), blocking=rev)
        rev = down
    return SchemaVerdict(current, target, tuple(path))
