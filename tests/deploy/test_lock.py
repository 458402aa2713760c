"""The fenced lock, --lock-wait and `inv lock` against the in-memory cluster of
fakecluster.py. On a real cluster: tests/e2e/test_deploy.py::test_a_deploy_that_lost_its_lease_*."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
from eq_deploy import lock as lockmod
from eq_deploy.errors import LockHeld, LockLost, UsageError
from eq_deploy.inspect import lock_command
from eq_deploy.lock import LOCK_NAME, parse_duration
from eq_deploy.progress import Reporter
from fakecluster import Build, FakeCluster
from test_flows import BASE, EXPAND, NS, A, B, Bed


@pytest.fixture
def bed(tmp_path: Path) -> Bed:
    return Bed(FakeCluster(builds={A: Build(BASE, "r2"), B: Build(EXPAND, "r3")}), tmp_path)


def take_over(bed: Bed, holder: str = "other@ci pid 9 (deploy sha-0ther)") -> None:
    lease = bed.cluster.get("Lease", LOCK_NAME, NS)
    assert lease is not None
    lease["spec"]["holderIdentity"] = holder
    bed.cluster.replace(lease)


def test_a_deploy_that_lost_its_lease_stops_before_its_next_write(bed: Bed) -> None:
    bed.deploy(A)
    served = bed.cluster.get("Deployment", "eq-backend", NS)
    bed.cluster.after_write.append((f"apply Job/eq-backend-migrate-{B}", lambda: take_over(bed)))
    with pytest.raises(
        LockLost, match=r"lost the deploy lock to other@ci .* stopped before rollout"
    ) as info:
        bed.deploy(B)
    assert info.value.exit_code == 3
    assert bed.cluster.get("Deployment", "eq-backend", NS) == served  # no write after the loss
    assert len(bed.history()) == 1  # nor a history write: the namespace is another's now
    lease = bed.cluster.get("Lease", LOCK_NAME, NS)
    assert lease is not None
    assert lease["spec"]["holderIdentity"].startswith("other@ci")


def test_a_deleted_lease_is_a_lost_lock_too(bed: Bed) -> None:
    bed.cluster.after_write.append(
        ("apply ConfigMap/", lambda: bed.cluster.delete("Lease", LOCK_NAME, NS))
    )
    with pytest.raises(LockLost, match=r"to nobody \(the lease was deleted\).* before migrate"):
        bed.deploy(A)


def test_a_deploy_holds_the_lock_for_its_environments_lease(bed: Bed) -> None:
    """kind.yaml's `lock_lease_seconds: 20`: the length a killed deploy blocks the next."""
    seen: list[int] = []

    def record() -> None:
        lease = bed.cluster.get("Lease", LOCK_NAME, NS)
        assert lease is not None
        seen.append(lease["spec"]["leaseDurationSeconds"])

    bed.cluster.after_write.append(("apply ConfigMap/", record))
    bed.deploy(A)
    assert seen == [20]


def test_a_lease_is_renewed_four_times_within_its_length(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    lock = lockmod.DeployLock(bed.cluster, NS, "deploy sha-1234", lease_seconds=20)  # type: ignore[arg-type]

    def stop_after_one(timeout: float) -> bool:
        waits.append(timeout)
        return True

    monkeypatch.setattr(lock._stop, "wait", stop_after_one)
    lock._renew_loop()
    assert waits == [5.0]


@pytest.mark.parametrize("value", ["20", 9, 0, True, 1.5])
def test_a_bad_lock_lease_names_the_file(
    value: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from eq_deploy import environments

    envs = tmp_path / "environments"
    shutil.copytree(environments.ENVIRONMENTS_DIR, envs)
    monkeypatch.setattr(environments, "ENVIRONMENTS_DIR", envs)
    path = envs / "kind.yaml"
    path.write_text(
        path.read_text().replace("lock_lease_seconds: 20", f"lock_lease_seconds: {value!r}")
    )
    with pytest.raises(UsageError, match=r"kind.yaml: bad or missing value .*'lock_lease_seconds'"):
        environments.load_environment("kind")


def test_lock_held_fails_at_once_with_exit_4(bed: Bed) -> None:
    lock_command(
        bed.target(),
        Reporter(io.StringIO()),
        "acquire",
        message="freeze for incident",
        kube=bed.cluster,
    )  # type: ignore[arg-type]
    with pytest.raises(
        LockHeld, match=r"\(by hand: freeze for incident\).*inv lock release lifts it"
    ) as info:
        bed.deploy(A)
    assert info.value.exit_code == 4
    assert bed.cluster.get("Deployment", "eq-backend", NS) is None


def test_lock_wait_waits_for_the_holder(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lockmod, "LOCK_WAIT_POLL", 0.05)
    out = io.StringIO()
    lock_command(bed.target(), Reporter(out), "acquire", message="short freeze", kube=bed.cluster)  # type: ignore[arg-type]
    timer = threading.Timer(
        0.3,
        lambda: lock_command(bed.target(), Reporter(out), "release", kube=bed.cluster),  # type: ignore[arg-type]
    )
    timer.start()
    started = time.monotonic()
    bed.deploy(A, lock_wait=30)
    timer.join()
    assert 0.3 <= time.monotonic() - started < 10
    assert "deploy lock held by" in bed.out.getvalue()  # the wait said what it waited for
    assert bed.live_tag() == A


def test_lock_wait_gives_up_at_its_deadline(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lockmod, "LOCK_WAIT_POLL", 0.05)
    lock_command(
        bed.target(), Reporter(io.StringIO()), "acquire", message="freeze", kube=bed.cluster
    )  # type: ignore[arg-type]
    with pytest.raises(LockHeld, match=r"\(waited 0s, --lock-wait\)$"):
        bed.deploy(A, lock_wait=0.2)


def test_inv_lock_status_and_release(bed: Bed) -> None:
    out = io.StringIO()
    target, reporter = bed.target(), Reporter(out)
    assert lock_command(target, reporter, "status", kube=bed.cluster) == {"held": False}  # type: ignore[arg-type]
    lock_command(target, reporter, "acquire", message="freeze", duration="2h", kube=bed.cluster)  # type: ignore[arg-type]
    state = lock_command(target, reporter, "status", kube=bed.cluster)  # type: ignore[arg-type]
    assert state["held"]
    assert state["by_hand"]
    assert "(by hand: freeze)" in state["holder"]
    lock_command(target, reporter, "release", kube=bed.cluster)  # type: ignore[arg-type]
    assert bed.cluster.get("Lease", LOCK_NAME, NS) is None
    assert "released the deploy lock" in out.getvalue()


def test_inv_lock_release_leaves_a_deploys_lock_without_force(bed: Bed) -> None:
    lease = lockmod.DeployLock(bed.cluster, NS, "deploy sha-1234")  # type: ignore[arg-type]
    lease._acquire_once()
    with pytest.raises(LockHeld, match="held by a deploy"):
        lock_command(bed.target(), Reporter(io.StringIO()), "release", kube=bed.cluster)  # type: ignore[arg-type]
    lock_command(bed.target(), Reporter(io.StringIO()), "release", force=True, kube=bed.cluster)  # type: ignore[arg-type]
    assert bed.cluster.get("Lease", LOCK_NAME, NS) is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("0", 0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--lock-wait") == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 m", "-3", "1d"])
def test_bad_durations_name_the_flag(text: str) -> None:
    with pytest.raises(UsageError, match=f"--lock-wait {text!r}: want a duration"):
        parse_duration(text, "--lock-wait")


def test_acquire_by_hand_needs_a_message(bed: Bed) -> None:
    with pytest.raises(UsageError, match="--message says why"):
        lock_command(bed.target(), Reporter(io.StringIO()), "acquire", kube=bed.cluster)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="inv lock 'grab'"):
        lock_command(bed.target(), Reporter(io.StringIO()), "grab", kube=bed.cluster)  # type: ignore[arg-type]
