"""The deploy lock: a Kubernetes Lease in the namespace, so two deploys (or a deploy and a
rollback) never run at once. The holder renews it while it works; a holder that died stops
renewing and its lease goes stale after `LEASE_SECONDS`, when the next deploy takes it over.
`--force-unlock` removes a lease regardless of its holder."""

from __future__ import annotations

import getpass
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from eq_deploy.errors import DeployError, LockHeld
from eq_deploy.kube import Kube, KubeError

LOCK_NAME = "eq-deploy-lock"
LEASE_SECONDS = 60
RENEW_EVERY = 15


def who() -> str:
    """`user@host` for history and the lock."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def lease_expiry(lease: dict[str, Any]) -> datetime | None:
    spec = lease.get("spec") or {}
    renewed = spec.get("renewTime") or spec.get("acquireTime")
    if not renewed:
        return None
    return _parse(renewed) + timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0))


class DeployLock:
    def __init__(
        self, kube: Kube, namespace: str, purpose: str, *, lease_seconds: int = LEASE_SECONDS
    ):
        self.kube = kube
        self.namespace = namespace
        self.holder = f"{who()} pid {os.getpid()} ({purpose})"
        self.lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lease: dict[str, Any] | None = None
        self.took_over: str = ""  # the stale holder this lock replaced, if any

    def _body(self, resource_version: str | None = None) -> dict[str, Any]:
        now = _stamp(_now())
        meta: dict[str, Any] = {
            "name": LOCK_NAME,
            "namespace": self.namespace,
            "labels": {"app.kubernetes.io/managed-by": "eq-deploy"},
        }
        if resource_version:
            meta["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": self.lease_seconds,
                "acquireTime": now,
                "renewTime": now,
            },
        }

    def acquire(self) -> None:
        """Take the lease or raise a DeployError naming its holder and when it expires."""
        try:
            self._lease = self.kube.create(self._body())
        except KubeError as exc:
            if exc.status != 409:
                raise
            current = self.kube.get("Lease", LOCK_NAME, self.namespace)
            if current is None:  # released in between
                self._lease = self.kube.create(self._body())
            else:
                self._take_over_if_stale(current)
        self._thread = threading.Thread(target=self._renew_loop, name="deploy-lock", daemon=True)
        self._thread.start()

    def _take_over_if_stale(self, current: dict[str, Any]) -> None:
        holder = (current.get("spec") or {}).get("holderIdentity") or "?"
        expiry = lease_expiry(current)
        if expiry is not None and expiry > _now():
            left = int((expiry - _now()).total_seconds())
            raise LockHeld(
                f"deploy lock held by {holder} (lease {self.namespace}/{LOCK_NAME}, "
                f"stale in {left}s); wait, or --force-unlock if that deploy is gone"
            )
        try:
            self._lease = self.kube.replace(self._body(current["metadata"]["resourceVersion"]))
        except KubeError as exc:
            if exc.status == 409:
                raise LockHeld(
                    f"deploy lock {self.namespace}/{LOCK_NAME} was just taken by another deploy"
                ) from None
            raise
        self.took_over = holder

    def _renew_loop(self) -> None:
        while not self._stop.wait(RENEW_EVERY):
            try:
                lease = self.kube.get("Lease", LOCK_NAME, self.namespace)
                if lease is None or lease["spec"].get("holderIdentity") != self.holder:
                    return  # force-unlocked: nothing to renew
                lease["spec"]["renewTime"] = _stamp(_now())
                self._lease = self.kube.replace(lease)
            except DeployError:
                continue  # a missed renewal is retried; the lease outlives a few of them

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            lease = self.kube.get("Lease", LOCK_NAME, self.namespace)
            if lease is not None and lease["spec"].get("holderIdentity") == self.holder:
                self.kube.delete(
                    "Lease",
                    LOCK_NAME,
                    self.namespace,
                    resource_version=lease["metadata"]["resourceVersion"],
                )
        except DeployError:
            pass  # it goes stale by itself

    def __enter__(self) -> DeployLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def force_unlock(kube: Kube, namespace: str) -> str | None:
    """Delete the lease whoever holds it; return the holder it had."""
    lease = kube.get("Lease", LOCK_NAME, namespace)
    if lease is None:
        return None
    kube.delete("Lease", LOCK_NAME, namespace)
    return str((lease.get("spec") or {}).get("holderIdentity") or "?")
