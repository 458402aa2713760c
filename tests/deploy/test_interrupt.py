"""Interruption (SIGINT/SIGTERM) and migration Jobs owned by the lock, against the in-memory
cluster of fakecluster.py: real signals sent to this process at a chosen write, the flows'
ordering and records checked. The same scenarios run on a real cluster in
tests/e2e/test_deploy.py (test_interrupt_*)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from eq_deploy import history as hist
from eq_deploy import waits
from eq_deploy.errors import LockHeld
from eq_deploy.interrupt import Interrupted, Interruption
from fakecluster import Build, FakeCluster
from test_flows import BASE, CONTRACT, EXPAND, NS, A, B, Bed

MIG_B = f"eq-backend-migrate-{B}"


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster(
        builds={
            A: Build(BASE, "r2"),
            B: Build(EXPAND, "r3"),
            "sha-cccc003": Build(CONTRACT, "r4"),
        }
    )


@pytest.fixture
def bed(cluster: FakeCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bed:
    monkeypatch.setattr(waits, "POLL_SECONDS", 0.01)
    return Bed(cluster, tmp_path)


def _deployment_version(bed: Bed) -> str:
    deployment = bed.cluster.get("Deployment", "eq-backend", NS)
    assert deployment is not None
    return str(deployment["metadata"]["resourceVersion"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_migration_is_recorded_and_its_job_left_running(bed: Bed, signum: int) -> None:
    bed.deploy(A)
    served = _deployment_version(bed)
    bed.cluster.job_polls[MIG_B] = 1000  # a migration that takes its time
    bed.cluster.signal_after = (f"apply Job/{MIG_B}", signum)
    with pytest.raises(Interrupted) as info:
        bed.deploy(B)
    name = signal.Signals(signum).name
    assert info.value.exit_code == 130
    assert info.value.message == (
        f"interrupted by {name} during migrate; migration Job {MIG_B} left to finish "
        f"(a deploy of {B} waits for it); the Deployment was not touched"
    )
    newest = bed.history()[0]
    assert (newest.tag, newest.result) == (B, hist.INTERRUPTED)
    assert newest.reason == info.value.message
    assert _deployment_version(bed) == served
    assert f"delete Job/{MIG_B}" not in bed.cluster.writes
    assert bed.cluster.get("Job", MIG_B, NS) is not None  # still running
    assert bed.cluster.get("Lease", "eq-deploy-lock", NS) is None
    assert "[5/7] migrate    INTERRUPTED" in bed.out.getvalue()


def test_a_running_migration_job_is_waited_for_by_its_tag_and_refuses_another(bed: Bed) -> None:
    bed.deploy(A)
    bed.cluster.job_polls[MIG_B] = 1000
    bed.cluster.signal_after = (f"apply Job/{MIG_B}", signal.SIGINT)
    with pytest.raises(Interrupted):
        bed.deploy(B)
    writes = len(bed.cluster.writes)
    with pytest.raises(LockHeld, match=rf"migration Job {MIG_B} is still running") as info:
        bed.deploy("sha-cccc003")
    assert info.value.exit_code == 4
    changed = [w for w in bed.cluster.writes[writes:] if "Lease" not in w]
    assert changed == ["apply Namespace/eq-flows"]  # the refused deploy changed nothing else

    bed.cluster.job_polls[MIG_B] = 5  # it ends while the next deploy of its tag waits
    bed.deploy(B)
    assert "alembic head r3 (waited for the run an earlier deploy started)" in bed.out.getvalue()
    assert f"delete Job/{MIG_B}" not in bed.cluster.writes
    assert bed.live_tag() == B
    assert bed.history()[0].result == hist.SUCCEEDED


def test_a_rollback_waits_for_a_running_migration_too(bed: Bed) -> None:
    bed.deploy(A)
    bed.deploy(B)
    bed.cluster.builds["sha-bbbb0003"] = Build(EXPAND, "r3")
    job = "eq-backend-migrate-sha-bbbb0003"
    bed.cluster.job_polls[job] = 1000
    bed.cluster.signal_after = (f"apply Job/{job}", signal.SIGINT)
    with pytest.raises(Interrupted):
        bed.deploy("sha-bbbb0003")
    with pytest.raises(LockHeld, match=f"migration Job {job} is still running"):
        bed.rollback()
    assert bed.live_tag() == B


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_rollout_rolls_back_to_the_previous_release(bed: Bed, signum: int) -> None:
    bed.deploy(A)
    settings_a = bed.cluster.live_settings(NS)
    bed.settings("b" * 32, "DEBUG")
    bed.cluster.signal_after = ("apply Deployment/eq-backend", signum)
    with pytest.raises(Interrupted) as info:
        bed.deploy(B)
    name = signal.Signals(signum).name
    assert info.value.message == f"interrupted by {name} during rollout (rolled back to {A})"
    assert bed.live_tag() == A
    assert bed.cluster.live_settings(NS) == settings_a
    newest = bed.history()[0]
    assert (newest.tag, newest.result) == (B, hist.INTERRUPTED)
    assert newest.reason == f"interrupted by {name} during rollout; rolled back to {A}"
    lines = [line for line in bed.out.getvalue().splitlines() if line.startswith("[")]
    assert lines[-2].startswith("[6/7] rollout    INTERRUPTED")
    assert lines[-1].startswith("[7/7] rollback   ok")
    assert bed.cluster.get("Lease", "eq-deploy-lock", NS) is None
    bed.deploy(B)  # the next deploy goes through
    assert bed.live_tag() == B


def test_interrupted_rollout_after_a_contract_migration_is_not_rolled_back(bed: Bed) -> None:
    bed.deploy(A)
    bed.cluster.signal_after = ("apply Deployment/eq-backend", signal.SIGINT)
    with pytest.raises(Interrupted) as info:
        bed.deploy("sha-cccc003")
    assert info.value.exit_code == 130
    assert "automatic rollback to sha-aaaa001 stopped: revision r4 is a contract" in (
        info.value.message
    )
    assert bed.live_tag() == "sha-cccc003"
    assert bed.history()[0].result == hist.INTERRUPTED


def test_interrupted_before_the_lock_records_nothing(bed: Bed) -> None:
    bed.deploy(A)
    bed.cluster.signal_after = ("apply Namespace/", signal.SIGINT)
    with pytest.raises(Interrupted, match="during lock; stopped before the lock: nothing to undo"):
        bed.deploy(B)
    assert len(bed.history()) == 1
    assert bed.live_tag() == A


def test_interrupted_rollback_is_recorded(bed: Bed) -> None:
    bed.deploy(A)
    bed.deploy(B)
    bed.cluster.signal_after = ("apply Deployment/eq-backend", signal.SIGTERM)
    with pytest.raises(Interrupted, match=f"during rollout; the rollout to {A} goes on"):
        bed.rollback()
    newest = bed.history()[0]
    assert (newest.action, newest.result) == ("rollback", hist.INTERRUPTED)


def test_the_time_left_counts_from_the_first_signal() -> None:
    interruption = Interruption()
    assert interruption.time_left() == float("inf")
    interruption.request("SIGINT")
    interruption.request("SIGTERM")  # a second request keeps the first signal and time
    assert interruption.signal_name == "SIGINT"
    assert 4.5 < interruption.time_left() <= 5.0
    with pytest.raises(Interrupted):
        interruption.checkpoint("rollout")
    interruption.checkpoint("rollback")  # the cleanup passes


def test_a_second_signal_exits_at_once(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, signal, sys, time
        from eq_deploy.interrupt import Interruption, stopping_on_signals

        interruption = Interruption()
        with stopping_on_signals(interruption):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            assert interruption.signal_name == "SIGINT"
            print("first signal noted", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        print("not reached", flush=True)
        """
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 130, result.stderr
    assert time.monotonic() - started < 4
    assert result.stdout == "first signal noted\n"
    assert "SIGINT: stopping after the current call" in result.stderr
    assert "error: SIGTERM again: exiting now" in result.stderr


def test_a_deployment_the_tool_did_not_apply_is_restored_whole(bed: Bed) -> None:
    """The manual process applied it with kubectl: no eq-deploy fields to extract, so the
    automatic rollback re-applies what served (server bookkeeping removed)."""
    bed.deploy(A)
    live = bed.cluster.objects[("Deployment", NS, "eq-backend")]
    live["metadata"]["managedFields"] = [
        {"manager": "kubectl-client-side-apply", "operation": "Update", "fieldsV1": {"f:spec": {}}}
    ]
    bed.cluster.signal_after = ("apply Deployment/eq-backend", signal.SIGINT)
    with pytest.raises(Interrupted, match=f"rolled back to {A}"):
        bed.deploy(B)
    assert bed.live_tag() == A
