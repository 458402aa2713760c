"""Hooks (post_deploy, on_failure) from the environment file: a command gets the DEPLOY_*
variables, a webhook gets them as JSON; a failing hook is a warning; secrets in a hook never
reach the output. The flows run against the in-memory cluster of fakecluster.py."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from eq_deploy import environments
from eq_deploy.errors import DeployError, UsageError
from fakecluster import Build, FakeCluster
from test_flows import BASE, EXPAND, A, B, Bed

DUMP = (
    "import json, os, sys; "
    "json.dump({k: v for k, v in os.environ.items() if k.startswith('DEPLOY_')}, "
    "open(sys.argv[1], 'w'))"
)


@pytest.fixture
def envs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of deploy/environments the test can add hooks to."""
    target = tmp_path / "environments"
    shutil.copytree(environments.ENVIRONMENTS_DIR, target)
    monkeypatch.setattr(environments, "ENVIRONMENTS_DIR", target)
    return target


def with_hooks(envs: Path, **hooks: str) -> None:
    path = envs / "kind.yaml"
    path.write_text(
        path.read_text()
        + "hooks:\n"
        + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in hooks.items())
    )


@pytest.fixture
def bed(tmp_path: Path) -> Bed:
    cluster = FakeCluster(
        builds={
            A: Build(BASE, "r2"),
            B: Build(EXPAND, "r3"),
            "sha-fa110001": Build(EXPAND, "r3", fails_migration=True),
        }
    )
    return Bed(cluster, tmp_path)


def command(out: Path) -> str:
    return f"{sys.executable} -c {json.dumps(DUMP)} {out}"


def test_post_deploy_command_gets_the_deploy_variables(
    bed: Bed, envs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "post.json"
    with_hooks(envs, post_deploy=command(out))
    bed.deploy(A, message="first release")
    got = json.loads(out.read_text())
    assert got["DEPLOY_EVENT"] == "post_deploy"
    assert got["DEPLOY_ACTION"] == "deploy"
    assert got["DEPLOY_RESULT"] == "succeeded"
    assert got["DEPLOY_EXIT_CODE"] == "0"
    assert got["DEPLOY_TAG"] == A
    assert got["DEPLOY_REVISION"] == "1"
    assert got["DEPLOY_MESSAGE"] == "first release"
    assert got["DEPLOY_NAMESPACE"] == "eq-flows"
    assert got["DEPLOY_ENV"] == "kind"
    assert "hook post_deploy: command exited 0" in bed.out.getvalue()


def test_on_failure_command_gets_the_reason_and_exit_code(
    bed: Bed, envs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "failure.json"
    with_hooks(envs, on_failure=command(out), post_deploy=command(tmp_path / "never.json"))
    bed.deploy(A)
    (tmp_path / "never.json").unlink()
    with pytest.raises(DeployError):
        bed.deploy("sha-fa110001")
    got = json.loads(out.read_text())
    assert (got["DEPLOY_EVENT"], got["DEPLOY_RESULT"], got["DEPLOY_EXIT_CODE"]) == (
        "on_failure",
        "failed",
        "1",
    )
    assert got["DEPLOY_REASON"].startswith("migration Job eq-backend-migrate-sha-fa110001 failed")
    assert got["DEPLOY_REVISION"] == "2"
    assert not (tmp_path / "never.json").exists()


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Hook.received = []
    yield f"http://127.0.0.1:{server.server_port}/hooks/T0KEN"
    server.shutdown()


def test_a_webhook_gets_json_and_its_url_is_never_printed(
    bed: Bed, envs: Path, webhook: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAT_WEBHOOK", webhook)
    with_hooks(envs, post_deploy="${CHAT_WEBHOOK}")
    bed.deploy(A)
    (body,) = Hook.received
    assert body["text"] == f"deploy {A} to eq-flows (kind): succeeded"
    assert body["deploy"]["DEPLOY_TAG"] == A
    assert "hook post_deploy: webhook answered HTTP 204" in bed.out.getvalue()
    assert "T0KEN" not in bed.out.getvalue()


@pytest.mark.parametrize(
    ("hook", "warning"),
    [
        (
            f"{sys.executable} -c 'raise SystemExit(5)'",
            "warning: hook post_deploy: command exited 5",
        ),
        (
            "/nonexistent/notify",
            "warning: hook post_deploy: command could not run (FileNotFoundError)",
        ),
        ("${NOT_SET_ANYWHERE}", "warning: hook post_deploy: ${NOT_SET_ANYWHERE} is not set"),
        ("http://127.0.0.1:9/x", "warning: hook post_deploy: webhook unreachable (ConnectError)"),
    ],
)
def test_a_failing_hook_is_a_warning_not_a_failure(
    bed: Bed, envs: Path, hook: str, warning: str
) -> None:
    with_hooks(envs, post_deploy=hook)
    bed.deploy(A)  # succeeds
    assert warning in bed.out.getvalue()
    assert bed.history()[0].result == "succeeded"


def test_an_unknown_hook_names_the_file(envs: Path) -> None:
    with_hooks(envs, after_party="echo")
    with pytest.raises(UsageError, match=r"kind.yaml: bad or missing value .*'hooks'"):
        environments.load_environment("kind")
