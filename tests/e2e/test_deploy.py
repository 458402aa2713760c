"""The deploy tool end to end on a real cluster (`nox -s e2e`): build → push → deploy → smoke →
history, a re-deploy, dry-run/diff, the lock, a failing migration, a crashing image with its
automatic rollback, and `inv rollback`. Every step runs the real `inv` command line.

The scenarios share one namespace and run in file order (NodePort 30080 exists once per
cluster). Pods reach a throwaway PostgreSQL and Redis on the host through the node address.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eq_deploy.clusters import ClusterProvider
from eq_deploy.sandbox import (
    CRASH_ON_RUN,
    FAIL_MIGRATION,
    Postgres,
    Redis,
    derive_image,
    python_entrypoint,
)

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = "eq-backend"


@dataclass
class Bed:
    cluster: ClusterProvider
    namespace: str
    env_file: Path
    registry: str
    tags: dict[str, str] = field(default_factory=dict)  # role -> tag
    digests: dict[str, str] = field(default_factory=dict)

    def inv(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        where = [
            "--context",
            self.cluster.context,
            "--namespace",
            self.namespace,
            "--env-file",
            str(self.env_file),
        ]
        command = [sys.executable, "-m", "invoke", "--search-root", str(ROOT), *args]
        if args[0] not in {"build", "render"}:
            command += where
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        result = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        sys.stdout.write(f"$ inv {' '.join(args)}\n{result.stdout}{result.stderr}\n")
        return result

    def kube(self) -> Any:
        from eq_deploy.kube import Kube

        os.environ["KUBECONFIG"] = str(self.cluster.kubeconfig)
        return Kube(self.cluster.context)

    def deployment(self) -> dict[str, Any]:
        deployment = self.kube().get("Deployment", "eq-backend", self.namespace)
        assert deployment is not None
        result: dict[str, Any] = deployment
        return result

    def health(self) -> dict[str, Any]:
        url = f"http://{self.cluster.node_address}:30080/health"
        body: dict[str, Any] = httpx.get(url, timeout=5).json()
        return body

    def history(self) -> list[Any]:
        from eq_deploy.history import read_history

        return read_history(self.kube(), self.namespace)


def image_of(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.fixture(scope="module")
def bed(cluster: ClusterProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    if not cluster.registry:
        pytest.fail(f"the {cluster.name} cluster has no registry to push builds to")
    postgres = Postgres.start(cluster.host_address_for_pods)
    redis = Redis.start(cluster.host_address_for_pods)
    env_file = tmp_path_factory.mktemp("deploy") / ".env"
    env_file.write_text(
        f"IMAGE={cluster.registry}/{REPOSITORY}\n"
        f"DATABASE_URL={postgres.url}\n"
        f"REDIS_URL={redis.url}\n"
        f"SECRET_KEY={uuid.uuid4().hex}{uuid.uuid4().hex}\n"
        'CORS_ORIGINS=["http://eq.example.test"]\n'
    )
    bed = Bed(cluster, f"eq-e2e-{uuid.uuid4().hex[:6]}", env_file, cluster.registry)
    try:
        yield bed
    finally:
        subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(cluster.kubeconfig),
                "--context",
                cluster.context,
                "delete",
                "namespace",
                bed.namespace,
                "--wait=false",
            ],
            check=False,
        )
        postgres.stop()
        redis.stop()


def test_build_push_deploy_smoke_history(bed: Bed) -> None:
    tag = (
        "sha-"
        + subprocess.run(
            ["git", "rev-parse", "--short=7", "HEAD"],
            cwd=ROOT,
            text=True,
            capture_output=True,
            check=True,
        ).stdout.strip()
    )
    built = bed.inv(
        "build",
        "--push",
        "--allow-dirty",
        "--tag",
        tag,
        "--image",
        f"{bed.registry}/{REPOSITORY}",
        "--build-arg",
        f"BASE_IMAGE={bed.cluster.base_image}",
        timeout=3000,
    )
    assert built.returncode == 0, built.stderr
    digest = next(
        line.split()[1] for line in built.stdout.splitlines() if line.startswith("digest ")
    )
    bed.tags["first"], bed.digests["first"] = tag, digest

    result = bed.inv("deploy", "--tag", tag, "--timeout", "240")
    assert result.returncode == 0, result.stderr
    assert f"deployed {tag} ({digest})" in result.stdout
    for step in (
        "preflight",
        "namespace",
        "lock",
        "config",
        "migrate",
        "rollout",
        "smoke",
        "record",
    ):
        assert f" {step} " in result.stdout
    deployment = bed.deployment()
    assert image_of(deployment) == f"{bed.registry}/{REPOSITORY}:{tag}@{digest}"
    health = bed.health()["data"]["deployment"]
    assert health["sha"] == tag.removeprefix("sha-")
    assert health["image"] == image_of(deployment)
    assert health["at"]
    assert health["by"]
    entries = bed.history()
    assert [(e.tag, e.result, e.action) for e in entries] == [(tag, "succeeded", "deploy")]
    assert entries[0].alembic_head
    assert entries[0].digest == digest


def test_redeploy_same_tag_keeps_the_pods(bed: Bed) -> None:
    before = bed.deployment()
    result = bed.inv("deploy", "--tag", bed.tags["first"])
    assert result.returncode == 0, result.stderr
    assert "already ran for this build" in result.stdout
    assert "(pods unchanged)" in result.stdout
    after = bed.deployment()
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert len(bed.history()) == 2


def test_derived_images(bed: Bed) -> None:
    """Images for the later scenarios: a second good build, one whose migration fails and one
    that crashes at startup (same layers, another entrypoint)."""
    first = bed.tags["first"]
    for role, tag, entrypoint in (
        ("second", "sha-5ec0d" + uuid.uuid4().hex[:5], None),
        ("failmig", "sha-fa11" + uuid.uuid4().hex[:6], python_entrypoint(FAIL_MIGRATION)),
        ("crash", "sha-dead" + uuid.uuid4().hex[:6], python_entrypoint(CRASH_ON_RUN)),
    ):
        bed.digests[role] = derive_image(
            bed.registry, REPOSITORY, first, tag, entrypoint=entrypoint, label=role
        )
        bed.tags[role] = tag


def test_dry_run_and_diff_change_nothing(bed: Bed) -> None:
    before = bed.deployment()
    result = bed.inv("deploy", "--tag", bed.tags["second"], "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "~ Deployment/eq-backend" in result.stdout
    assert f"+ Job/eq-backend-migrate-{bed.tags['second']} (new)" in result.stdout
    secret_values = [
        line.split("=", 1)[1]
        for line in bed.env_file.read_text().splitlines()
        if line.startswith(("SECRET_KEY=", "DATABASE_URL=", "REDIS_URL="))
    ]
    assert not any(value in result.stdout + result.stderr for value in secret_values)
    same = bed.inv("diff", "--tag", bed.tags["first"])
    assert same.returncode == 0, same.stderr
    assert "= Deployment/eq-backend" in same.stdout
    after = bed.deployment()
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert bed.kube().get("Job", f"eq-backend-migrate-{bed.tags['second']}", bed.namespace) is None
    assert len(bed.history()) == 2


def test_lock_held_by_another_deploy(bed: Bed) -> None:
    from datetime import UTC, datetime, timedelta

    kube = bed.kube()

    def lease(renewed: datetime) -> dict[str, Any]:
        stamp = renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "eq-deploy-lock", "namespace": bed.namespace},
            "spec": {
                "holderIdentity": "someone@elsewhere pid 1 (deploy sha-0000000)",
                "leaseDurationSeconds": 60,
                "acquireTime": stamp,
                "renewTime": stamp,
            },
        }

    kube.create(lease(datetime.now(UTC)))
    before = bed.deployment()
    held = bed.inv("deploy", "--tag", bed.tags["second"])
    assert held.returncode == 1
    assert "error: deploy lock held by someone@elsewhere pid 1 (deploy sha-0000000)" in held.stderr
    assert bed.deployment()["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    kube.delete("Lease", "eq-deploy-lock", bed.namespace)

    kube.create(lease(datetime.now(UTC) - timedelta(minutes=10)))
    stale = bed.inv("deploy", "--tag", bed.tags["first"])
    assert stale.returncode == 0, stale.stderr
    assert "took over stale lock of someone@elsewhere" in stale.stdout
    assert kube.get("Lease", "eq-deploy-lock", bed.namespace) is None


def test_failing_migration_leaves_the_old_version_serving(bed: Bed) -> None:
    before = bed.deployment()
    tag = bed.tags["failmig"]
    started = time.monotonic()
    result = bed.inv("deploy", "--tag", tag)
    assert result.returncode == 1
    assert time.monotonic() - started < 120  # failed fast, not at the timeout
    assert f"error: migration Job eq-backend-migrate-{tag} failed" in result.stderr
    assert "migration failed: simulated by the e2e image" in result.stdout + result.stderr
    after = bed.deployment()
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert image_of(after) == image_of(before)
    assert bed.health()["data"]["deployment"]["sha"] == bed.tags["first"].removeprefix("sha-")
    newest = bed.history()[0]
    assert (newest.tag, newest.result) == (tag, "failed")
    assert newest.reason.startswith("migration:")


def test_deploy_second_tag(bed: Bed) -> None:
    result = bed.inv("deploy", "--tag", bed.tags["second"])
    assert result.returncode == 0, result.stderr
    assert "Deployments stabilized in" in result.stdout
    assert bed.health()["data"]["deployment"]["sha"] == bed.tags["second"].removeprefix("sha-")


def test_crashing_image_is_caught_fast_and_rolled_back(bed: Bed) -> None:
    tag = bed.tags["crash"]
    started = time.monotonic()
    result = bed.inv("deploy", "--tag", tag)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < 150, f"took {elapsed:.0f}s: the crash loop was not caught early"
    assert "is in CrashLoopBackOff" in result.stderr
    assert f"(rolled back to {bed.tags['second']})" in result.stderr
    assert "boom: simulated crash at startup" in result.stdout + result.stderr
    assert image_of(bed.deployment()).split("@")[0].endswith(bed.tags["second"])
    assert bed.health()["data"]["deployment"]["sha"] == bed.tags["second"].removeprefix("sha-")
    newest = bed.history()[0]
    assert (newest.tag, newest.result) == (tag, "failed")
    assert "rolled back to" in newest.reason


def test_rollback_to_the_previous_successful_deploy(bed: Bed) -> None:
    result = bed.inv("rollback")
    assert result.returncode == 0, result.stderr
    first = bed.tags["first"]
    assert f"rolled back to {first}" in result.stdout
    assert "database schema known to" in result.stdout
    assert bed.health()["data"]["deployment"]["sha"] == first.removeprefix("sha-")
    newest = bed.history()[0]
    assert (newest.action, newest.tag, newest.result) == ("rollback", first, "succeeded")
    assert len(bed.history()) <= 10


def test_status_history_and_smoke_commands(bed: Bed) -> None:
    status = bed.inv("status")
    assert status.returncode == 0, status.stderr
    assert f"Deployment eq-backend: {bed.tags['first']}" in status.stdout
    assert "ready" in status.stdout
    history = bed.inv("history")
    assert history.returncode == 0, history.stderr
    assert "rollback" in history.stdout
    assert bed.tags["crash"] in history.stdout
    smoke = bed.inv("smoke")
    assert smoke.returncode == 0, smoke.stderr
    assert "smoke ok: 3 checks passed" in smoke.stdout
