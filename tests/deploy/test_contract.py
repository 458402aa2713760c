"""The CI contract, table-driven: each outcome's exit code and `--json` result, through the
same json_result/reports_errors the invoke tasks use, with the flows against the in-memory
cluster. On a real cluster: tests/e2e/test_deploy.py::test_exit_codes_and_json."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from eq_deploy.contract import json_result
from eq_deploy.deploy_tasks import reports_errors
from eq_deploy.inspect import change_summary, lock_command
from eq_deploy.lock import LOCK_NAME, run_url, who
from eq_deploy.progress import Reporter
from fakecluster import Build, FakeCluster
from invoke.exceptions import Exit
from test_flows import BASE, CONTRACT, EXPAND, NS, A, B, Bed

C = "sha-cccc003"


@pytest.fixture
def bed(tmp_path: Path) -> Bed:
    cluster = FakeCluster(
        builds={
            A: Build(BASE, "r2"),
            B: Build(EXPAND, "r3"),
            C: Build(CONTRACT, "r4"),
            "sha-fa110001": Build(EXPAND, "r3", fails_migration=True),
            "sha-dead0001": Build(EXPAND, "r3", crashes=True),
            "sha-dead0002": Build(CONTRACT, "r4", crashes=True),
        }
    )
    bed = Bed(cluster, tmp_path)
    bed.deploy(A)
    return bed


def hold_lock(bed: Bed) -> None:
    lock_command(bed.target(), Reporter(), "acquire", message="freeze", kube=bed.cluster)  # type: ignore[arg-type]


def take_lease_after_migration(bed: Bed) -> None:
    def steal() -> None:
        lease = bed.cluster.get("Lease", LOCK_NAME, NS)
        assert lease is not None
        lease["spec"]["holderIdentity"] = "other"
        bed.cluster.replace(lease)

    bed.cluster.after_write.append(("apply Job/", steal))


CASES: list[tuple[str, Callable[[Bed], None], str, int, str, dict[str, object]]] = [
    ("done", lambda b: None, B, 0, "succeeded", {"error": None, "changed": True}),
    ("same tag again", lambda b: None, A, 0, "succeeded", {"changed": False}),
    ("migration failed", lambda b: None, "sha-fa110001", 1, "failed", {"rolled_back_to": ""}),
    ("crash, rolled back", lambda b: None, "sha-dead0001", 1, "failed", {"rolled_back_to": A}),
    ("crash after contract", lambda b: None, "sha-dead0002", 3, "needs_human", {}),
    ("lease lost", take_lease_after_migration, B, 3, "needs_human", {}),
    ("lock held", hold_lock, B, 4, "lock_held", {"revision": 0}),
    ("bad tag", lambda b: None, "latest", 2, "usage_error", {"revision": 0}),
    (
        "interrupted",
        lambda b: b.cluster.__setattr__("signal_after", ("apply Deployment/", signal.SIGINT)),
        B,
        130,
        "interrupted",
        {"rolled_back_to": A},
    ),
]


@pytest.mark.parametrize(
    ("setup", "tag", "code", "result", "fields"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_exit_code_and_json_of_each_outcome(
    bed: Bed,
    capsys: pytest.CaptureFixture[str],
    setup: Callable[[Bed], None],
    tag: str,
    code: int,
    result: str,
    fields: dict[str, object],
) -> None:
    setup(bed)
    capsys.readouterr()

    @reports_errors
    def command() -> None:
        with json_result("deploy", True, tag=tag) as contract:
            contract.outcome = bed.deploy_outcome(tag)

    if code:
        with pytest.raises(Exit) as info:
            command()
        assert info.value.code == code
    else:
        command()
    out, err = capsys.readouterr()
    data = json.loads(out)  # stdout is exactly one JSON object
    assert data["exit_code"] == code
    assert data["result"] == result
    assert data["command"] == "deploy"
    for key, value in fields.items():
        assert data[key] == value, key
    if code:
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1
        assert data["error"] == errors[0].removeprefix("error: ")
    else:
        assert data["tag"] == tag
        assert data["revision"] == bed.history()[0].revision


def test_diff_summary_ops() -> None:
    summary = change_summary(
        A,
        [
            "= Service/eq-backend",
            "~ Deployment/eq-backend\n    -a\n    +b",
            "- Ingress/x (would delete)",
        ],
    )
    assert summary["changed"] is True
    assert [(o["object"], o["op"]) for o in summary["objects"]] == [
        ("Service/eq-backend", "same"),
        ("Deployment/eq-backend", "change"),
        ("Ingress/x", "delete"),
    ]
    assert change_summary(A, ["= Service/eq-backend"])["changed"] is False


def test_github_actions_names_the_actor_and_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "eq/eq",
        "GITHUB_RUN_ID": "42",
        "GITHUB_RUN_ATTEMPT": "2",
    }.items():
        monkeypatch.setenv(key, value)
    assert who() == "octocat (GitHub Actions)"
    assert run_url() == "https://github.com/eq/eq/actions/runs/42/attempts/2"
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert run_url() == ""
    assert "octocat" not in who()


def test_message_and_run_url_are_recorded(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    monkeypatch.setenv("GITHUB_REPOSITORY", "eq/eq")
    monkeypatch.setenv("GITHUB_RUN_ID", "7")
    bed.deploy(B, message="hotfix for #12")
    newest = bed.history()[0]
    assert newest.message == "hotfix for #12"
    assert newest.by == "octocat (GitHub Actions)"
    assert newest.run_url.endswith("/eq/eq/actions/runs/7")


def test_logs_command_reads_every_api_pod_in_the_target(bed: Bed) -> None:
    from eq_deploy.inspect import logs_command
    from eq_deploy.session import Session

    session = Session(bed.target(), Reporter(), check_required=False, kube=bed.cluster)  # type: ignore[arg-type]
    argv = logs_command(session, follow=True, tail=20, migrations=False)
    assert argv[:5] == ["kubectl", "--context", "kind-flows", "--namespace", NS]
    assert "app.kubernetes.io/name=eq-backend,app.kubernetes.io/component=api" in argv
    assert {"--prefix", "--tail=20", "--follow"} <= set(argv)
    jobs = logs_command(session, follow=False, tail=5, migrations=True)
    assert "--follow" not in jobs
    assert "app.kubernetes.io/name=eq-backend,app.kubernetes.io/component=migrate" in jobs
