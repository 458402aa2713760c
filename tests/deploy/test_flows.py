"""The deploy and rollback flows' ordering and error paths, fast, against the in-memory
cluster of fakecluster.py (the facade is a parameter of every flow). The same behaviours are
checked on a real cluster by tests/e2e/test_deploy.py and tests/e2e/test_releases.py."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from eq_deploy import history as hist
from eq_deploy.deploy import DeployOptions, deploy
from eq_deploy.errors import DeployError, NeedsHuman
from eq_deploy.inspect import show_history
from eq_deploy.progress import Reporter
from eq_deploy.rollback import RollbackOptions, rollback
from eq_deploy.session import Outcome, Target
from fakecluster import Build, FakeCluster

NS = "eq-flows"
BASE = {"r1": ["", "expand"], "r2": ["r1", "expand"]}
EXPAND = {**BASE, "r3": ["r2", "expand"]}
CONTRACT = {**EXPAND, "r4": ["r3", "contract"]}
A, B, C = "sha-aaaa001", "sha-bbbb002", "sha-cccc003"
KEY_A, KEY_B = "a" * 32, "b" * 32


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster(
        builds={
            A: Build(BASE, "r2"),
            B: Build(EXPAND, "r3"),
            C: Build(CONTRACT, "r4"),
            "sha-fa110001": Build(EXPAND, "r3", fails_migration=True),
            "sha-dead0001": Build(EXPAND, "r3", crashes=True),
            "sha-dead0002": Build(CONTRACT, "r4", crashes=True),
        }
    )


class Bed:
    def __init__(self, cluster: FakeCluster, tmp_path: Path) -> None:
        self.cluster = cluster
        self.env_file = tmp_path / ".env"
        self.out = io.StringIO()
        self.settings(KEY_A, "INFO")

    def settings(self, secret_key: str, log_level: str) -> None:
        self.env_file.write_text(
            "DATABASE_URL=postgresql://eq:pw@db.internal/eq\nREDIS_URL=redis://r.internal\n"
            f"SECRET_KEY={secret_key}\nLOG_LEVEL={log_level}\n"
        )

    def target(self) -> Target:
        return Target(environment="kind", namespace=NS, env_file=self.env_file)

    def deploy(self, tag: str, **opts: object) -> None:
        options = DeployOptions(tag=tag, target=self.target(), smoke=False, **opts)  # type: ignore[arg-type]
        deploy(options, Reporter(self.out, tty=False), kube=self.cluster)  # type: ignore[arg-type]

    def deploy_outcome(self, tag: str, **opts: object) -> Outcome:
        options = DeployOptions(tag=tag, target=self.target(), smoke=False, **opts)  # type: ignore[arg-type]
        return deploy(options, Reporter(self.out, tty=False), kube=self.cluster)  # type: ignore[arg-type]

    def rollback(self, **opts: object) -> None:
        options = RollbackOptions(target=self.target(), smoke=False, **opts)  # type: ignore[arg-type]
        rollback(options, Reporter(self.out, tty=False), kube=self.cluster)  # type: ignore[arg-type]

    def history(self) -> list[hist.Entry]:
        return hist.read_history(self.cluster, NS)  # type: ignore[arg-type]

    def live_secret_key(self) -> str:
        return self.cluster.secret_value(NS, self.cluster.live_settings(NS)[1], "SECRET_KEY")

    def live_tag(self) -> str:
        deployment = self.cluster.get("Deployment", "eq-backend", NS)
        assert deployment is not None
        return str(deployment["metadata"]["annotations"]["eq.deploy/tag"])


@pytest.fixture
def bed(cluster: FakeCluster, tmp_path: Path) -> Bed:
    return Bed(cluster, tmp_path)


def test_deploy_applies_in_order_and_records_the_release(bed: Bed) -> None:
    bed.deploy(A)
    kinds = [w.split()[1].split("/")[0] for w in bed.cluster.writes]
    first = {kind: kinds.index(kind) for kind in dict.fromkeys(kinds)}
    assert (
        first["Namespace"]
        < first["Lease"]
        < first["ConfigMap"]
        < first["Job"]
        < first["Deployment"]
        < first["Service"]
    )
    lines = [line for line in bed.out.getvalue().splitlines() if line.startswith("[")]
    assert [line.split()[1] for line in lines] == [
        "preflight",
        "namespace",
        "lock",
        "config",
        "migrate",
        "rollout",
        "record",
    ]
    assert all(line.startswith(f"[{i}/7]") for i, line in enumerate(lines, 1))
    (entry,) = bed.history()
    config, secret = bed.cluster.live_settings(NS)
    assert (entry.config_map, entry.secret) == (config, secret)
    assert (entry.alembic_before, entry.alembic_head) == ("none", "r2")
    assert entry.schema == BASE
    assert set(entry.settings) >= {"SECRET_KEY", "DATABASE_URL", "LOG_LEVEL"}
    assert KEY_A not in repr(entry)
    assert bed.cluster.get("Lease", "eq-deploy-lock", NS) is None


def test_rollback_restores_code_and_settings(bed: Bed) -> None:
    bed.deploy(A)
    settings_a = bed.cluster.live_settings(NS)
    bed.settings(KEY_B, "DEBUG")
    bed.deploy(B)
    assert bed.live_secret_key() == KEY_B
    bed.rollback()
    assert bed.live_tag() == A
    assert bed.cluster.live_settings(NS) == settings_a
    assert bed.live_secret_key() == KEY_A
    newest = bed.history()[0]
    assert (newest.action, newest.tag, newest.result) == ("rollback", A, "succeeded")
    assert newest.rolled_back_from == 2
    assert (newest.alembic_before, newest.alembic_head) == ("r3", "r3")  # expand: kept
    assert "only expand revisions since" in bed.out.getvalue()


def test_keep_settings_rolls_back_the_code_only(bed: Bed) -> None:
    bed.deploy(A)
    bed.settings(KEY_B, "DEBUG")
    bed.deploy(B)
    settings_b = bed.cluster.live_settings(NS)
    bed.rollback(keep_settings=True)
    assert bed.live_tag() == A
    assert bed.cluster.live_settings(NS) == settings_b
    assert "(settings kept)" in bed.out.getvalue()


def test_a_second_plain_rollback_does_not_go_back_to_what_was_left(bed: Bed) -> None:
    for tag in (A, B):
        bed.deploy(tag)
    bed.cluster.builds["sha-bbbb0003"] = Build(EXPAND, "r3")
    bed.deploy("sha-bbbb0003")
    bed.rollback()
    assert bed.live_tag() == B
    bed.rollback()
    assert bed.live_tag() == A


def test_failed_migration_keeps_the_old_release_and_its_settings(bed: Bed) -> None:
    bed.deploy(A)
    before = bed.cluster.get("Deployment", "eq-backend", NS)
    bed.settings(KEY_B, "DEBUG")
    with pytest.raises(DeployError, match=r"migration Job .* failed"):
        bed.deploy("sha-fa110001")
    assert bed.cluster.get("Deployment", "eq-backend", NS) == before
    assert bed.live_secret_key() == KEY_A
    newest = bed.history()[0]
    assert (newest.result, newest.reason.startswith("migration:")) == ("failed", True)


def test_crash_after_an_expand_migration_rolls_back_with_the_old_settings(bed: Bed) -> None:
    bed.deploy(A)
    settings_a = bed.cluster.live_settings(NS)
    bed.settings(KEY_B, "DEBUG")
    with pytest.raises(DeployError, match=rf"CrashLoopBackOff.*\(rolled back to {A}\)") as info:
        bed.deploy("sha-dead0001")
    assert type(info.value) is DeployError
    assert bed.live_tag() == A
    assert bed.cluster.live_settings(NS) == settings_a
    lines = [line for line in bed.out.getvalue().splitlines() if line.startswith("[")]
    assert lines[-1].startswith("[7/7] rollback")
    assert " ok " in lines[-1]


def test_crash_after_a_contract_migration_stops_and_needs_a_human(bed: Bed) -> None:
    bed.deploy(A)
    with pytest.raises(NeedsHuman, match=r"automatic rollback to .* stopped: revision r4") as info:
        bed.deploy("sha-dead0002")
    assert info.value.exit_code == 3
    assert bed.live_tag() == "sha-dead0002"  # nothing undone: the old code cannot run on r4
    assert "automatic rollback" in bed.history()[0].reason


def test_rollback_over_a_contract_needs_downgrade(bed: Bed) -> None:
    bed.deploy(A)
    bed.deploy(C)
    with pytest.raises(DeployError, match="revision r4 is a contract migration") as info:
        bed.rollback()
    assert "roll forward" in info.value.message
    assert "--downgrade" in info.value.message
    assert bed.live_tag() == C
    assert bed.history()[0].result == "failed"
    bed.rollback(downgrade=True)
    assert bed.live_tag() == A
    assert bed.cluster.database == "r2"
    assert bed.history()[0].alembic_head == "r2"


def test_twelve_failing_deploys_leave_a_rollback_possible(bed: Bed) -> None:
    bed.deploy(A)
    bed.deploy(B)
    for _ in range(12):
        with pytest.raises(DeployError):
            bed.deploy("sha-fa110001")
    assert len(bed.history()) == 2 + hist.KEEP_OTHER
    bed.rollback()
    assert bed.live_tag() == A


def test_unreferenced_settings_objects_are_collected(bed: Bed) -> None:
    first = None
    for i in range(12):
        bed.settings(f"{i:02d}" * 16, "INFO")
        bed.deploy(A)
        first = first or bed.cluster.live_settings(NS)
    assert first is not None
    kept = bed.cluster.settings_objects(NS)
    assert f"Secret/{first[1]}" not in kept  # its release fell out of history
    assert len([k for k in kept if k.startswith("Secret/")]) == hist.KEEP_SUCCEEDED
    assert f"Secret/{bed.cluster.live_settings(NS)[1]}" in kept


def test_history_shows_which_keys_changed(bed: Bed) -> None:
    bed.deploy(A)
    bed.settings(KEY_B, "DEBUG")
    bed.deploy(B)
    out = io.StringIO()
    show_history(bed.target(), Reporter(out, tty=False), changes=f"{A}..{B}", kube=bed.cluster)  # type: ignore[arg-type]
    text = out.getvalue()
    assert "~ LOG_LEVEL (REDACTED)" in text
    assert "~ SECRET_KEY (REDACTED)" in text
    assert KEY_B not in text
    assert "DEBUG" not in text
    table = io.StringIO()
    show_history(bed.target(), Reporter(table, tty=False), kube=bed.cluster)  # type: ignore[arg-type]
    assert "~LOG_LEVEL,~SECRET_KEY" in table.getvalue()


def test_redeploying_a_build_reuses_its_migration_and_keeps_the_pods(bed: Bed) -> None:
    bed.deploy(A)
    generation = bed.cluster.get("Deployment", "eq-backend", NS)["metadata"]["generation"]  # type: ignore[index]
    bed.deploy(A)
    assert "already ran for this build" in bed.out.getvalue()
    assert "(pods unchanged)" in bed.out.getvalue()
    again = bed.cluster.get("Deployment", "eq-backend", NS)
    assert again is not None
    assert again["metadata"]["generation"] == generation
    newest = bed.history()[0]
    assert (newest.alembic_before, newest.alembic_head) == ("r2", "r2")  # nothing ran now
