"""The runner, the reporter, rollout/pod state reading, the smoke's choice of address and
the invoke layer's error lines."""

from __future__ import annotations

import http.server
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eq_cluster.services import free_port
from eq_deploy.access import service_url
from eq_deploy.build import BuildOptions, build_command
from eq_deploy.deploy import keep_runtime_if_unchanged
from eq_deploy.errors import DeployError
from eq_deploy.pipeline import Runner, Step
from eq_deploy.progress import Reporter
from eq_deploy.render import render_manifests
from eq_deploy.settings import sample_values
from eq_deploy.waits import fatal_container_state, pods_not_ready_endpoints, rollout_state
from fakecluster import FakeCluster

ROOT = Path(__file__).resolve().parents[2]
TAG = "sha-abc1234"


def test_runner_times_apply_and_wait_and_reports_plain_lines() -> None:
    out = io.StringIO()
    runner = Runner(Reporter(out, tty=False), total=2)
    runner.run(Step("config", lambda: "ConfigMap/x"))

    def wait(status: Callable[[str], None]) -> str:
        status("1/2 ready")
        return "done"

    runner.run(Step("rollout", lambda: None, wait))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[1/2] config     ok")
    assert lines[0].endswith("ConfigMap/x")
    assert lines[1] == "  [2/2] rollout: 1/2 ready"
    assert lines[2].startswith("[2/2] rollout    ok")
    assert [t.ok for t in runner.timings] == [True, True]
    assert runner.waited("rollout") >= 0


def test_runner_reports_failure_with_detail_once_and_reraises() -> None:
    out = io.StringIO()
    runner = Runner(Reporter(out, tty=False), total=1)

    def fail(status: Any) -> str:
        raise DeployError("migration Job x failed (BackoffLimitExceeded)", detail="log line")

    with pytest.raises(DeployError) as info:
        runner.run(Step("migrate", lambda: None, fail))
    assert "FAILED" in out.getvalue().splitlines()[0]
    assert "    log line" in out.getvalue()
    assert info.value.detail == ""  # shown once, not again by the invoke layer


def test_status_lines_overwrite_in_a_terminal() -> None:
    out = io.StringIO()
    reporter = Reporter(out, tty=True)
    reporter.status("waiting 1")
    reporter.status("waiting 2")
    reporter.line("done")
    assert out.getvalue() == "waiting 1\r\x1b[Kwaiting 2\r\x1b[Kdone\n"


def deployment(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "eq-backend", "generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, **status},
    }


@pytest.mark.parametrize(
    ("status", "done", "text"),
    [
        ({"observedGeneration": 1}, False, "waiting for the controller"),
        ({"updatedReplicas": 1, "replicas": 3}, False, "1/2 replicas updated"),
        ({"updatedReplicas": 2, "replicas": 3}, False, "1 old replica(s) pending termination"),
        (
            {"updatedReplicas": 2, "replicas": 2, "availableReplicas": 1},
            False,
            "1/2 updated replicas available",
        ),
        (
            {"updatedReplicas": 2, "replicas": 2, "availableReplicas": 2},
            True,
            "2/2 replicas available",
        ),
    ],
)
def test_rollout_state(status: dict[str, Any], done: bool, text: str) -> None:
    got_done, got_text = rollout_state(deployment(**status))
    assert got_done is done
    assert got_text.startswith(text)


def test_progress_deadline_exceeded_fails_fast() -> None:
    d = deployment(
        conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "m"}]
    )
    with pytest.raises(DeployError, match="exceeded its progress deadline"):
        rollout_state(d)


@pytest.mark.parametrize(
    "reason", ["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName"]
)
def test_fatal_container_states(reason: str) -> None:
    pod = {
        "status": {
            "containerStatuses": [
                {"state": {"waiting": {"reason": reason, "message": "back-off 10s"}}}
            ]
        }
    }
    assert fatal_container_state(pod) == f"is in {reason}: back-off 10s"


def test_starting_containers_are_not_fatal() -> None:
    pod = {
        "status": {"containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}]}
    }
    assert fatal_container_state(pod) is None


def test_redeploy_of_same_build_keeps_pod_template() -> None:
    def objects(at: str) -> list[dict[str, Any]]:
        return render_manifests("local", TAG, values={**sample_values(), "DEPLOYED_AT": at})

    live = next(o for o in objects("2025-01-01T00:00:00Z") if o["kind"] == "Deployment")
    again = objects("2025-02-02T00:00:00Z")
    assert keep_runtime_if_unchanged(again, live) is True
    new = next(o for o in again if o["kind"] == "Deployment")
    assert new["spec"]["template"] == live["spec"]["template"]
    other = render_manifests("local", "sha-def5678", values={**sample_values(), "DEPLOYED_AT": "x"})
    assert keep_runtime_if_unchanged(other, live) is False


def test_build_command_labels_cache_and_plain_http_registry() -> None:
    opts = BuildOptions(
        repository="127.0.0.1:5000/eq-backend",
        push=True,
        platforms="linux/amd64,linux/arm64",
        build_args=["BASE_IMAGE=127.0.0.1:5000/python:3.11"],
    )
    cmd = build_command(opts, TAG, Path("/tmp/meta.json"))
    joined = " ".join(cmd)
    assert cmd[:3] == ["docker", "buildx", "build"]
    assert "--platform linux/amd64,linux/arm64" in joined
    assert "--build-arg BASE_IMAGE=127.0.0.1:5000/python:3.11" in joined
    assert "--label org.opencontainers.image.revision=" in joined
    assert (
        "type=registry,ref=127.0.0.1:5000/eq-backend:buildcache,mode=max,registry.insecure=true"
        in joined
    )
    assert (
        f"type=image,name=127.0.0.1:5000/eq-backend:{TAG},push=true,registry.insecure=true"
        in joined
    )


def inv(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(ROOT), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def test_bad_tag_is_one_line_and_exit_2() -> None:
    result = inv("deploy", "--tag", "latest")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --tag 'latest' is not sha-<4 to 40 hex digits> "
        "(deploy commits, not moving tags; --allow-tag overrides)"
    ]


def test_missing_setting_is_one_line(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("SECRET_KEY=0123456789abcdef0123\n")
    no_env = {"DATABASE_URL": "", "REDIS_URL": ""}
    result = inv("deploy", "--tag", TAG, "--env-file", str(env_file), env=no_env)
    assert result.returncode == 2
    want = f"error: missing required setting(s) in {env_file}: DATABASE_URL, REDIS_URL"
    assert result.stderr.strip() == want


def test_localhost_database_is_one_line(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text(
        "SECRET_KEY=0123456789abcdef0123\nREDIS_URL=redis://r.internal\n"
        "DATABASE_URL=postgresql://eq@localhost/eq\n"
    )
    result = inv("deploy", "--tag", TAG, "--env-file", str(env_file))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: DATABASE_URL points at localhost")
    assert "Traceback" not in result.stderr


def test_unreachable_cluster_is_one_line(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text(
        "SECRET_KEY=0123456789abcdef0123\nREDIS_URL=redis://r.internal\n"
        "DATABASE_URL=postgresql://eq@db.internal/eq\n"
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        "clusters: [{name: gone, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: u}}]\n"
    )
    result = inv(
        "deploy", "--tag", TAG, "--env-file", str(env_file), env={"KUBECONFIG": str(kubeconfig)}
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith("error: cluster unreachable at https://127.0.0.1:9 (context gone)")
    assert "Traceback" not in result.stderr


def test_render_prints_no_secret(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text(
        "SECRET_KEY=super-secret-value-123456\nREDIS_URL=redis://:pw@r.internal\n"
        "DATABASE_URL=postgresql://u:hunter2@db.internal/eq\n"
    )
    result = inv("render", "--tag", TAG, "--env-file", str(env_file))
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert "super-secret-value" not in result.stdout
    assert "DATABASE_URL: REDACTED" in result.stdout


def test_plain_status_lines_ignore_a_running_counter() -> None:
    out = io.StringIO()
    reporter = Reporter(out, tty=False)
    for second in range(5):
        reporter.status(f"job x: 1 pod(s) running ({second}s)")
    reporter.status("job x: 0 pod(s) running (5s)")
    assert out.getvalue().splitlines() == [
        "  job x: 1 pod(s) running (0s)",
        "  job x: 0 pod(s) running (5s)",
    ]


def test_short_git_abbreviation_passes_the_tag_check() -> None:
    """The users' own example: `git rev-parse --short` may print 6 hex digits."""
    result = inv("render", "--tag", "sha-abc123")
    assert result.returncode == 0, result.stderr
    assert "value: abc123" in result.stdout  # DEPLOY_SHA on the pods


def _pod(name: str, ready: bool) -> dict[str, Any]:
    status = "True" if ready else "False"
    return {
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": status}]},
    }


def _endpoint(pod: str, ready: bool | None) -> dict[str, Any]:
    conditions = {} if ready is None else {"ready": ready}
    return {"targetRef": {"kind": "Pod", "name": pod}, "conditions": conditions}


def test_a_ready_pod_counts_as_serving_only_once_a_slice_lists_it_ready() -> None:
    pods = [_pod("a", True), _pod("b", True), _pod("c", True), _pod("d", False)]
    slices = [
        {"endpoints": [_endpoint("a", True), _endpoint("b", False)]},
        {"endpoints": [_endpoint("x", True)]},  # another pod (an old one): no help
        {"endpoints": None},  # a slice with no endpoints yet
    ]
    assert pods_not_ready_endpoints(pods, slices) == ["b", "c"]  # d is not ready: not waited for
    # An endpoint without a ready condition is ready (the API's nil means true).
    slices.append({"endpoints": [_endpoint("b", None), _endpoint("c", True)]})
    assert pods_not_ready_endpoints(pods, slices) == []


def test_the_smoke_waits_for_the_services_own_address_before_a_port_forward() -> None:
    """A first deploy's address refuses until the node's proxy rules catch up: the smoke
    gives it a moment instead of passing through a port-forward while users are refused."""

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Health, bind_and_activate=False)
    serving = threading.Thread(target=server.serve_forever)

    def open_late() -> None:
        server.server_bind()
        server.server_activate()
        serving.start()

    opener = threading.Timer(1.0, open_late)
    opener.start()
    started = time.monotonic()
    try:
        with service_url(FakeCluster(), "eq", env_url=url, wait_for_any=5) as answered:
            waited = time.monotonic() - started
    finally:
        opener.join()
        server.shutdown()
        server.server_close()
    assert answered == url  # not a port-forward
    assert waited >= 0.9
