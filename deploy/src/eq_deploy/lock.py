"""The deploy lock: a Kubernetes Lease in the namespace, so two deploys (or a deploy and a
rollback) never run at once. The holder renews it while it works; a holder that died stops
renewing and its lease goes stale after its length (the environment's `lock_lease_seconds`),
when the next deploy takes it over.
`--force-unlock` removes a lease regardless of its holder.

The lock is fenced: before every step that writes, `fence` renews the lease with a
resourceVersion precondition, so a deploy that stalled past its lease (laptop asleep, network
partition) and lost it to a takeover learns so before its next write, and stops (LockLost).
Kubernetes has no fencing tokens, so the window left is one step, not zero.

A lease taken by hand (`inv lock acquire -m "freeze for incident"`) is not renewed: it lasts
its duration (24 h unless said) or until `inv lock release`.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from eq_deploy.errors import DeployError, LockHeld, LockLost, UsageError
from eq_deploy.kube import Kube, KubeError

if TYPE_CHECKING:
    from eq_deploy.session import Session

LOCK_NAME = "eq-deploy-lock"
LEASE_SECONDS = 60  # the default; an environment sets its own (lock_lease_seconds)
MIN_LEASE_SECONDS = 10
RENEW_EVERY = 15  # at most; a lease is renewed at least four times within its length
LOCK_WAIT_POLL = 2.0
BY_HAND = "by hand: "  # in the holder of a lease taken with `inv lock acquire`
DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


def parse_duration(text: str, flag: str) -> float:
    """Seconds of "90", "90s", "5m", "1h30m"; a UsageError naming `flag` otherwise."""
    match = DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise UsageError(f"{flag} {text!r}: want a duration like 90s, 5m or 1h30m")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def who() -> str:
    """Who deploys, for history, the pods and the lock: in GitHub Actions the actor (not the
    runner's account), else `user@host`."""
    actor = os.environ.get("GITHUB_ACTOR", "")
    if actor and os.environ.get("GITHUB_ACTIONS") == "true":
        return f"{actor} (GitHub Actions)"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def run_url() -> str:
    """The CI run that deploys (GitHub Actions), for history; "" elsewhere."""
    env = os.environ
    if env.get("GITHUB_ACTIONS") != "true" or not env.get("GITHUB_RUN_ID"):
        return ""
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    attempt = env.get("GITHUB_RUN_ATTEMPT", "")
    url = f"{server}/{env.get('GITHUB_REPOSITORY', '')}/actions/runs/{env['GITHUB_RUN_ID']}"
    return url + (f"/attempts/{attempt}" if attempt else "")


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
        self.lost: str = ""  # who holds the lease now, once this holder lost it
        self._renewing = threading.Lock()

    @classmethod
    def for_session(cls, session: Session, purpose: str) -> DeployLock:
        """The lock of the session's namespace, leased for its environment's length."""
        lease = session.env.lock_lease_seconds
        return cls(session.kube, session.namespace, purpose, lease_seconds=lease)

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

    def acquire(self, *, wait: float = 0, status: Callable[[str], None] | None = None) -> None:
        """Take the lease, waiting up to `wait` seconds while another holds it (`status` gets
        a line at each try); else raise LockHeld naming the holder and when it expires."""
        deadline = time.monotonic() + wait
        while True:
            try:
                self._acquire_once()
                break
            except LockHeld as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    if wait:
                        exc.message += f" (waited {wait:.0f}s, --lock-wait)"
                    raise
                if status is not None:
                    status(f"{exc.message.split(';')[0]} ({left:.0f}s left of --lock-wait)")
                time.sleep(min(LOCK_WAIT_POLL, left))
        self._thread = threading.Thread(target=self._renew_loop, name="deploy-lock", daemon=True)
        self._thread.start()

    def _acquire_once(self) -> None:
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

    def _take_over_if_stale(self, current: dict[str, Any]) -> None:
        holder = (current.get("spec") or {}).get("holderIdentity") or "?"
        expiry = lease_expiry(current)
        if expiry is not None and expiry > _now():
            left = int((expiry - _now()).total_seconds())
            way_out = (
                "inv lock release lifts it"
                if BY_HAND in holder
                else "wait (--lock-wait), or --force-unlock if that deploy is gone"
            )
            raise LockHeld(
                f"deploy lock held by {holder} (lease {self.namespace}/{LOCK_NAME}, "
                f"stale in {left}s); {way_out}"
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
        while not self._stop.wait(min(RENEW_EVERY, self.lease_seconds / 4)):
            try:
                self._renew()
            except LockLost:
                return  # the next fence says so, before the next write
            except DeployError:
                continue  # a missed renewal is retried; the lease outlives a few of them

    def _renew(self) -> None:
        """Renew the lease if it is still ours (resourceVersion precondition: a takeover in
        between is a conflict); LockLost otherwise."""
        from eq_deploy.kube import KubeError

        with self._renewing:  # the renew thread and a fence never race each other
            lease = self.kube.get("Lease", LOCK_NAME, self.namespace)
            holder = (lease or {}).get("spec", {}).get("holderIdentity")
            if lease is not None and holder == self.holder:
                lease["spec"]["renewTime"] = _stamp(_now())
                try:
                    self._lease = self.kube.replace(lease)
                    return
                except KubeError as exc:
                    if exc.status != 409:
                        raise
                    current = self.kube.get("Lease", LOCK_NAME, self.namespace)
                    holder = (current or {}).get("spec", {}).get("holderIdentity")
            self.lost = str(holder or "nobody (the lease was deleted)")
        raise LockLost(f"lost the deploy lock to {self.lost}")

    def fence(self, step: str) -> None:
        """Before a step that writes: still ours? (and renewed). LockLost names the holder."""
        if not self.lost:
            try:
                self._renew()
                return
            except LockLost:
                pass
        raise LockLost(
            f"lost the deploy lock to {self.lost} (this run stalled past its "
            f"{self.lease_seconds}s lease, or the lock was removed); stopped before {step}, "
            "changing nothing more: check inv status and inv history"
        )

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


# --- by hand: inv lock acquire | release | status ---------------------------------------------
def acquire_by_hand(kube: Kube, namespace: str, message: str, seconds: float) -> DeployLock:
    """Hold the lock without a process renewing it: it lasts `seconds` or until released."""
    if not message.strip():
        raise UsageError("inv lock acquire: --message says why (it is shown to every deploy)")
    lock = DeployLock(kube, namespace, "", lease_seconds=int(seconds))
    lock.holder = f"{who()} ({BY_HAND}{message.strip()})"
    lock._acquire_once()  # no renew thread: nobody is left to renew it
    return lock


def release_by_hand(kube: Kube, namespace: str, *, force: bool = False) -> str | None:
    """Delete a lease taken by hand (any lease with `force`); the holder it had."""
    lease = kube.get("Lease", LOCK_NAME, namespace)
    if lease is None:
        return None
    holder = str((lease.get("spec") or {}).get("holderIdentity") or "?")
    if BY_HAND not in holder and not force:
        raise LockHeld(
            f"the deploy lock is held by a deploy, {holder}; it releases it itself "
            "(--force if that deploy is gone)"
        )
    kube.delete(
        "Lease", LOCK_NAME, namespace, resource_version=lease["metadata"]["resourceVersion"]
    )
    return holder


def lock_state(kube: Kube, namespace: str) -> dict[str, Any]:
    """{"held": False} or the holder, when it was taken and renewed, and when it goes stale."""
    lease = kube.get("Lease", LOCK_NAME, namespace)
    if lease is None:
        return {"held": False}
    spec = lease.get("spec") or {}
    expiry = lease_expiry(lease)
    return {
        "held": expiry is None or expiry > _now(),
        "holder": spec.get("holderIdentity") or "?",
        "acquired": spec.get("acquireTime") or "",
        "renewed": spec.get("renewTime") or "",
        "stale_at": _stamp(expiry) if expiry else "",
        "by_hand": BY_HAND in str(spec.get("holderIdentity") or ""),
    }
