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
from eq_cluster import ClusterProvider
from eq_cluster.derived_images import (
    CRASH_ON_RUN,
    FAIL_MIGRATION,
    derive_image,
    python_entrypoint,
)
from eq_cluster.pod_services import Postgres, Redis

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = "eq-backend"


@dataclass
class Bed:
    cluster: ClusterProvider
    namespace: str
    env_file: Path
    registry: str
    postgres: Postgres
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
    bed = Bed(cluster, f"eq-e2e-{uuid.uuid4().hex[:6]}", env_file, cluster.registry, postgres)
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
    assert f"known to {first}" in result.stdout  # the schema check
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


# --- releases: settings and schema travel with every deploy and rollback ------------------------
# The scenarios below continue from the state above (the first build serving) and share the
# same namespace and database. Images with extra migrations are derived in the registry: the
# first build plus one layer holding a migration script (no image build).
VERSIONS = "/app/eq_backend/migrations/versions"
EXPAND_REV, CONTRACT_REV = "e2e0e1a2b3c4", "e2e0c5d6e7f8"
API_PODS = "app.kubernetes.io/name=eq-backend,app.kubernetes.io/component=api"
USER_EMAIL = "e2e-releases@example.test"


def _migration(revision: str, down: str, kind: str, upgrade: str, downgrade: str) -> str:
    return (
        f'"""e2e: a {kind} revision."""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = {revision!r}\ndown_revision = {down!r}\n"
        f"branch_labels = None\ndepends_on = None\nschema_change = {kind!r}\n\n\n"
        f"def upgrade():\n    {upgrade}\n\n\ndef downgrade():\n    {downgrade}\n"
    )


def _migration_files(*, contract: bool) -> dict[str, str]:
    from eq_backend.migrations.runner import script_head

    files = {
        f"{VERSIONS}/{EXPAND_REV}_e2e_expand.py": _migration(
            EXPAND_REV,
            script_head(),
            "expand",
            'op.add_column("situations", sa.Column("e2e_note", sa.Text(), nullable=True))',
            'op.drop_column("situations", "e2e_note")',
        )
    }
    if contract:  # drops a column the first build reads (its situation endpoints)
        files[f"{VERSIONS}/{CONTRACT_REV}_e2e_contract.py"] = _migration(
            CONTRACT_REV,
            EXPAND_REV,
            "contract",
            'op.drop_column("situations", "image_url")',
            'op.add_column("situations", sa.Column("image_url", sa.String(), nullable=True))',
        )
    return files


def set_settings(bed: Bed, **values: str) -> None:
    lines = [
        line
        for line in bed.env_file.read_text().splitlines()
        if line.split("=", 1)[0] not in values
    ]
    bed.env_file.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in values.items())]) + "\n")


def kubectl(bed: Bed, *args: str, timeout: float = 60) -> str:
    result = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(bed.cluster.kubeconfig),
            "--context",
            bed.cluster.context,
            "-n",
            bed.namespace,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def sql(bed: Bed, query: str, *params: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(bed.postgres.url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def serving_pods(bed: Bed, wait_until: Any) -> list[str]:
    """Names of the API pods once exactly the Deployment's replicas are ready and none ends."""

    def ready() -> list[str]:
        pods = bed.kube().items("Pod", bed.namespace, labels=API_PODS)
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ok = [
            p["metadata"]["name"]
            for p in live
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        ]
        return ok if len(ok) == len(pods) == 2 else []

    names: list[str] = wait_until("two ready API pods and no other", ready, 120)
    return names


PROBE = """
import hashlib, os, sys, urllib.request
request = urllib.request.Request(
    "http://127.0.0.1:8000/api/v1/users/me", headers={"Authorization": "Bearer " + sys.argv[1]}
)
try:
    status = urllib.request.urlopen(request, timeout=5).status
except urllib.error.HTTPError as exc:
    status = exc.code
key = hashlib.sha256(os.environ["SECRET_KEY"].encode()).hexdigest()[:12]
print(os.environ["ACCESS_TOKEN_EXPIRE_MINUTES"], key, status)
"""


def token(secret_key: str) -> str:
    """An HS256 JWT for USER_EMAIL, signed with `secret_key` (what the backend issues)."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": USER_EMAIL, "iat": now, "exp": now + 900}).encode())
    signature = hmac.new(secret_key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def pods_run_with(bed: Bed, wait_until: Any, minutes: str, secret_key: str) -> None:
    """Every API pod has ACCESS_TOKEN_EXPIRE_MINUTES=`minutes` and SECRET_KEY=`secret_key`
    (compared by hash) and accepts a token signed with that key."""
    import hashlib

    want = f"{minutes} {hashlib.sha256(secret_key.encode()).hexdigest()[:12]} 200"
    for pod in serving_pods(bed, wait_until):
        got = kubectl(bed, "exec", pod, "-c", "api", "--", "python", "-c", PROBE, token(secret_key))
        assert got.strip() == want, f"pod {pod}: {got.strip()!r} (want {want!r})"


def delete_one_pod(bed: Bed, wait_until: Any) -> None:
    pod = serving_pods(bed, wait_until)[0]
    kubectl(bed, "delete", "pod", pod, "--wait=false")
    wait_until(
        f"pod {pod} replaced",
        lambda: pod not in [p["metadata"]["name"] for p in bed.kube().items("Pod", bed.namespace)],
        90,
    )


def database_revision(bed: Bed) -> str:
    return str(sql(bed, "SELECT version_num FROM alembic_version")[0][0])


KEY_A, KEY_B = uuid.uuid4().hex * 2, uuid.uuid4().hex * 2


def test_rollback_restores_the_settings_too(bed: Bed, wait_until: Any) -> None:
    """A with X=1, B with X=2 and a new SECRET_KEY, then `inv rollback`: A's settings serve,
    also on a pod started afterwards, and A's tokens are accepted by every pod."""
    sql(
        bed,
        "INSERT INTO users (email, name) VALUES (%s, 'E2E') ON CONFLICT DO NOTHING",
        USER_EMAIL,
    )
    set_settings(bed, ACCESS_TOKEN_EXPIRE_MINUTES="1", SECRET_KEY=KEY_A)
    first = bed.inv("deploy", "--tag", bed.tags["first"], "--no-smoke")
    assert first.returncode == 0, first.stderr
    set_settings(bed, ACCESS_TOKEN_EXPIRE_MINUTES="2", SECRET_KEY=KEY_B)
    second = bed.inv("deploy", "--tag", bed.tags["second"], "--no-smoke")
    assert second.returncode == 0, second.stderr
    pods_run_with(bed, wait_until, "2", KEY_B)

    result = bed.inv("rollback", "--no-smoke")
    assert result.returncode == 0, result.stderr
    assert f"rolled back to {bed.tags['first']}" in result.stdout
    pods_run_with(bed, wait_until, "1", KEY_A)
    delete_one_pod(bed, wait_until)
    pods_run_with(bed, wait_until, "1", KEY_A)

    entries = bed.history()
    deployed_a, deployed_b = entries[2], entries[1]
    assert (deployed_a.tag, deployed_b.tag) == (bed.tags["first"], bed.tags["second"])
    changes = bed.inv("history", "--changes", f"{deployed_a.revision}..{deployed_b.revision}")
    assert changes.returncode == 0, changes.stderr
    assert "~ SECRET_KEY (REDACTED)" in changes.stdout
    assert "~ ACCESS_TOKEN_EXPIRE_MINUTES (REDACTED)" in changes.stdout
    assert KEY_B not in changes.stdout + changes.stderr


def test_failed_migration_keeps_the_old_settings(bed: Bed, wait_until: Any) -> None:
    result = bed.inv("deploy", "--tag", bed.tags["failmig"], "--timeout", "90")
    assert result.returncode == 1
    delete_one_pod(bed, wait_until)
    pods_run_with(bed, wait_until, "1", KEY_A)  # not B's settings of the failed deploy


def test_derive_images_with_migrations(bed: Bed) -> None:
    first = bed.tags["first"]
    crash = python_entrypoint(CRASH_ON_RUN)
    for role, prefix, contract, entrypoint in (
        ("expand", "sha-e1", False, None),
        ("contract", "sha-c2", True, None),
        ("crash_expand", "sha-de1", False, crash),
        ("crash_contract", "sha-de2", True, crash),
        ("lockwait", "sha-10c", False, None),
    ):
        tag = prefix + uuid.uuid4().hex[:6]
        files = _migration_files(contract=contract)
        bed.digests[role] = derive_image(
            bed.registry, REPOSITORY, first, tag, entrypoint=entrypoint, label=role, files=files
        )
        bed.tags[role] = tag


def test_crash_after_an_expand_migration_rolls_back_with_the_old_settings(
    bed: Bed, wait_until: Any
) -> None:
    result = bed.inv("deploy", "--tag", bed.tags["crash_expand"])
    assert result.returncode == 1, result.stderr
    assert f"(rolled back to {bed.tags['first']})" in result.stderr
    assert database_revision(bed) == EXPAND_REV
    pods_run_with(bed, wait_until, "1", KEY_A)


def test_rollback_over_an_expand_migration_needs_no_force(bed: Bed) -> None:
    set_settings(bed, ACCESS_TOKEN_EXPIRE_MINUTES="1", SECRET_KEY=KEY_A)
    deployed = bed.inv("deploy", "--tag", bed.tags["expand"])
    assert deployed.returncode == 0, deployed.stderr
    result = bed.inv("rollback")
    assert result.returncode == 0, result.stderr
    assert f"only expand revisions since {bed.tags['first']} ({EXPAND_REV} expand)" in result.stdout
    assert database_revision(bed) == EXPAND_REV  # the first build serves on the new schema
    assert bed.health()["data"]["deployment"]["sha"] == bed.tags["first"].removeprefix("sha-")


def test_rollback_over_a_contract_migration_needs_downgrade(bed: Bed) -> None:
    topic = sql(bed, "INSERT INTO topics (name) VALUES ('e2e releases') RETURNING id")[0][0]
    sql(
        bed,
        "INSERT INTO situations (topic_id, context, question, image_url) "
        "VALUES (%s, 'c', 'q?', 'https://img.example.test/1.png')",
        topic,
    )
    counts = (
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM topics), "
        "(SELECT count(*) FROM situations)"
    )
    before = sql(bed, counts)
    deployed = bed.inv("deploy", "--tag", bed.tags["contract"])
    assert deployed.returncode == 0, deployed.stderr
    serving = bed.deployment()["metadata"]["resourceVersion"]

    refused = bed.inv("rollback")
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, refused.stderr
    assert f"revision {CONTRACT_REV} is a contract migration" in errors[0]
    assert "roll forward" in errors[0]
    assert "inv rollback --downgrade" in errors[0]
    assert bed.deployment()["metadata"]["resourceVersion"] == serving

    result = bed.inv("rollback", "--downgrade")
    assert result.returncode == 0, result.stderr
    # Down to the schema the restored release ran on: the expand revision stays.
    assert database_revision(bed) == EXPAND_REV
    assert sql(bed, counts) == before
    columns = {
        r[0]
        for r in sql(
            bed, "SELECT column_name FROM information_schema.columns WHERE table_name='situations'"
        )
    }
    assert {"image_url", "e2e_note"} <= columns
    assert bed.health()["data"]["deployment"]["sha"] == bed.tags["first"].removeprefix("sha-")
    feed = httpx.get(f"http://{bed.cluster.node_address}:30080/api/v1/situations/feed", timeout=10)
    assert feed.status_code == 200, feed.text


def test_crash_after_a_contract_migration_stops_and_needs_a_human(bed: Bed) -> None:
    result = bed.inv("deploy", "--tag", bed.tags["crash_contract"])
    assert result.returncode == 3, result.stderr
    assert f"automatic rollback to {bed.tags['first']} stopped: revision {CONTRACT_REV}" in (
        result.stderr
    )
    assert bed.history()[0].result == "failed"
    recovered = bed.inv("rollback", "--downgrade")
    assert recovered.returncode == 0, recovered.stderr
    assert bed.health()["data"]["deployment"]["sha"] == bed.tags["first"].removeprefix("sha-")


def test_twelve_failing_deploys_leave_rollback_possible(bed: Bed) -> None:
    for _ in range(12):
        failed = bed.inv("deploy", "--tag", bed.tags["failmig"], "--timeout", "90")
        assert failed.returncode == 1, failed.stdout
    entries = bed.history()
    assert sum(e.result == "failed" for e in entries) == 10
    assert any(e.result == "succeeded" for e in entries)
    result = bed.inv("rollback")
    assert result.returncode == 0, result.stderr


def test_a_migration_waits_for_the_one_running(bed: Bed, wait_until: Any) -> None:
    """The lock of a running migration (held here by hand, as `migrate` holds it) makes the
    deploy's migration Job wait; once it is free the deploy goes through."""
    import psycopg

    tag = bed.tags["lockwait"]
    job = f"eq-backend-migrate-{tag}"
    with psycopg.connect(bed.postgres.url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (0x65716D696772,))
        command = [sys.executable, "-m", "invoke", "--search-root", str(ROOT), "deploy"]
        where = ["--context", bed.cluster.context, "--namespace", bed.namespace]
        deploy = subprocess.Popen(
            [*command, "--tag", tag, *where, "--env-file", str(bed.env_file)],
            cwd=ROOT,
            env={**os.environ, "KUBECONFIG": str(bed.cluster.kubeconfig)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until(
                "the migration to wait for the lock",
                lambda: "waiting for another migration" in kubectl(bed, "logs", f"job/{job}"),
                90,
            )
            time.sleep(3)
            assert deploy.poll() is None, "the deploy went on while another migration ran"
            job_status = bed.kube().get("Job", job, bed.namespace) or {}
            assert not (job_status.get("status") or {}).get("succeeded")
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (0x65716D696772,))
    out, _ = deploy.communicate(timeout=300)
    assert deploy.returncode == 0, out


def test_a_short_git_sha_tag_is_accepted_and_a_missing_image_is_one_line(bed: Bed) -> None:
    before = bed.deployment()["metadata"]["resourceVersion"]
    result = bed.inv("deploy", "--tag", "sha-abc123")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: image ")
    assert "sha-abc123 not found" in errors[0]
    assert bed.deployment()["metadata"]["resourceVersion"] == before
