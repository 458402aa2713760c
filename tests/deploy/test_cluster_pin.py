"""Each environment pins the clusters it may change; a deploy, rollback or `inv lock` on any
other stops before its first call to the cluster. On a real cluster:
tests/e2e/test_deploy.py::test_a_context_the_environment_does_not_pin_changes_nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from eq_deploy.environments import load_environment
from eq_deploy.errors import UsageError
from eq_deploy.inspect import lock_command
from eq_deploy.progress import Reporter
from fakecluster import Build, FakeCluster
from test_flows import BASE, A, Bed


@pytest.mark.parametrize(
    ("env", "context", "server"),
    [
        ("local", "eq-local", "https://127.0.0.1:6443"),
        ("local", "kind-eq", "https://127.0.0.1:40111"),
        ("local", "anything", "https://localhost:6443"),
        ("kind", "kind-ci", "https://10.0.0.5:6443"),
        ("cloud", "prod", "https://k8s.example.com"),
    ],
)
def test_pinned_clusters_pass(env: str, context: str, server: str) -> None:
    load_environment(env).check_cluster(context, server)


@pytest.mark.parametrize(
    ("env", "context", "server"),
    [
        ("local", "prod", "https://k8s.example.com"),
        ("kind", "prod", "https://k8s.example.com"),
        ("cloud", "eq-local", "https://127.0.0.1:6443"),
        ("cloud", "production", "https://k8s.example.com"),
    ],
)
def test_other_clusters_are_refused_in_one_line(env: str, context: str, server: str) -> None:
    with pytest.raises(UsageError) as info:
        load_environment(env).check_cluster(context, server)
    message = info.value.message
    assert "\n" not in message
    assert message.startswith(f"--env {env} deploys only to context ")
    assert f"not to context {context} ({server})" in message
    assert info.value.exit_code == 2


def test_a_deploy_to_an_unpinned_cluster_changes_nothing(tmp_path: Path) -> None:
    cluster = FakeCluster(builds={A: Build(BASE, "r2")}, context="prod", server="https://k8s.prod")
    bed = Bed(cluster, tmp_path)
    with pytest.raises(UsageError, match=r"--env kind deploys only to .* not to context prod"):
        bed.deploy(A)
    with pytest.raises(UsageError, match="not to context prod"):
        bed.rollback()
    with pytest.raises(UsageError, match="not to context prod"):
        lock_command(bed.target(), Reporter(io.StringIO()), "acquire", message="x", kube=cluster)  # type: ignore[arg-type]
    assert cluster.writes == []
    assert cluster.objects == {}
