"""The deploy tool end to end on a real cluster (`nox -s e2e`): build → push → deploy → smoke →
history, a re-deploy, dry-run/diff, the lock, a failing migration, a crashing image with its
automatic rollback, and `inv rollback`. Every step runs the real `inv` command line.

The scenarios share one namespace and run in file order (NodePort 30080 exists once per
cluster). Pods reach a throwaway PostgreSQL and Redis on the host through the node address.
"""

from __future__ import annotations

import os
import re
import signal
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
from release_load import (
    FIGURES,
    Ledger,
    LoadRun,
    Traffic,
    held_load,
    http_status,
    is_503_envelope,
    seconds_until,
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
    postgres: Postgres
    redis: Redis
    tags: dict[str, str] = field(default_factory=dict)  # role -> tag
    digests: dict[str, str] = field(default_factory=dict)

    def inv(
        self,
        *args: str,
        timeout: float = 900,
        env_file: Path | None = None,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        where = [
            "--context",
            self.cluster.context,
            "--namespace",
            self.namespace,
            "--env-file",
            str(env_file or self.env_file),
        ]
        command = [sys.executable, "-m", "invoke", "--search-root", str(ROOT), *args]
        if args[0] not in {"build", "render"}:
            command += where
        env = {**os.environ, "KUBECONFIG": str(kubeconfig or self.cluster.kubeconfig)}
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
        # The load scenarios write as a few users at ~100 writes/s; the default of 30 a
        # minute per user would answer most of them 429.
        "WRITE_RATE_LIMIT=100000/minute\n"
    )
    namespace = f"eq-e2e-{uuid.uuid4().hex[:6]}"
    bed = Bed(cluster, namespace, env_file, cluster.registry, postgres, redis)
    try:
        wait_for_earlier_beds_to_go(bed)
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


def wait_for_earlier_beds_to_go(bed: Bed, timeout: float = 120) -> None:
    """An earlier run's namespace is deleted without waiting (teardown); until it is gone
    its Service can still hold NodePort 30080 in kube-proxy's rules, and this run's first
    requests to the port would be refused."""
    deadline = time.monotonic() + timeout
    while leftovers := [
        ns["metadata"]["name"]
        for ns in bed.kube().items("Namespace")
        if ns["metadata"]["name"].startswith("eq-e2e-")
    ]:
        assert time.monotonic() < deadline, f"namespaces of an earlier run not gone: {leftovers}"
        time.sleep(1)


LOAD_USERS, LOAD_SITUATIONS = 8, 40


@pytest.fixture(scope="module")
def traffic(bed: Bed) -> Traffic:
    """The load scenarios' users and situations, written straight into the database (the
    first deploy has migrated it), and bearer tokens signed with the deployed SECRET_KEY."""
    emails = [f"load-{n}@example.test" for n in range(LOAD_USERS)]
    users = [
        sql(
            bed,
            "INSERT INTO users (email, name) VALUES (%s, %s) "
            "ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            email,
            f"Load user {n}",
        )[0][0]
        for n, email in enumerate(emails)
    ]
    situations = [
        sql(
            bed,
            "INSERT INTO situations (user_id, context, question) VALUES (%s, %s, %s) RETURNING id",
            users[n % LOAD_USERS],
            f"A situation seen under load, number {n}.",
            "What would you do?",
        )[0][0]
        for n in range(LOAD_SITUATIONS)
    ]
    from eq_deploy.settings import read_env_file

    secret = read_env_file(bed.env_file)["SECRET_KEY"]
    tokens = [token(secret, email, lifetime=3 * 3600) for email in emails]
    return Traffic(f"http://{bed.cluster.node_address}:30080", tokens, situations)


def pod_restarts(bed: Bed) -> int:
    """Container restarts summed over the API pods."""
    return sum(
        status["restartCount"]
        for pod in bed.kube().items("Pod", bed.namespace, labels=API_PODS)
        for status in (pod.get("status") or {}).get("containerStatuses") or []
    )


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
    assert held.returncode == 4  # lock held
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


def timed_inv(bed: Bed, load: LoadRun, figure: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`bed.inv(*args)`, its wall time kept in the load run's figures as `figure`."""
    started = time.monotonic()
    result = bed.inv(*args)
    load.extra[figure] = round(time.monotonic() - started, 1)
    return result


def test_deploy_second_tag(bed: Bed, traffic: Traffic) -> None:
    with held_load(traffic, "1. deploy of B over A") as load:
        result = timed_inv(bed, load, "deploy_s", "deploy", "--tag", bed.tags["second"])
    assert result.returncode == 0, result.stderr
    assert "Deployments stabilized in" in result.stdout
    assert bed.health()["data"]["deployment"]["sha"] == bed.tags["second"].removeprefix("sha-")


def test_crashing_image_is_caught_fast_and_rolled_back(bed: Bed, traffic: Traffic) -> None:
    """The crashing pods never become ready, so they never get a request: the load sees no
    failure while the deploy notices the crash loop and rolls back."""
    tag = bed.tags["crash"]
    with held_load(traffic, "3. crashing build, rolled back automatically") as load:
        result = timed_inv(bed, load, "deploy_to_rolled_back_s", "deploy", "--tag", tag)
    assert result.returncode == 1
    assert load.extra["deploy_to_rolled_back_s"] < 150, "the crash loop was not caught early"
    assert "is in CrashLoopBackOff" in result.stderr
    assert f"(rolled back to {bed.tags['second']})" in result.stderr
    assert "boom: simulated crash at startup" in result.stdout + result.stderr
    assert image_of(bed.deployment()).split("@")[0].endswith(bed.tags["second"])
    assert bed.health()["data"]["deployment"]["sha"] == bed.tags["second"].removeprefix("sha-")
    newest = bed.history()[0]
    assert (newest.tag, newest.result) == (tag, "failed")
    assert "rolled back to" in newest.reason


def test_rollback_to_the_previous_successful_deploy(bed: Bed, traffic: Traffic) -> None:
    jobs = {job["metadata"]["uid"] for job in bed.kube().items("Job", bed.namespace)}
    with held_load(traffic, "2. inv rollback to A") as load:
        result = timed_inv(bed, load, "rollback_s", "rollback")
    assert result.returncode == 0, result.stderr
    first = bed.tags["first"]
    assert f"rolled back to {first}" in result.stdout
    assert f"known to {first}" in result.stdout  # the schema check
    assert bed.health()["data"]["deployment"]["sha"] == first.removeprefix("sha-")
    newest = bed.history()[0]
    assert (newest.action, newest.tag, newest.result) == ("rollback", first, "succeeded")
    assert len(bed.history()) <= 10
    # No migration Job was created (a rollback never migrates; finished Jobs may be gone).
    assert {job["metadata"]["uid"] for job in bed.kube().items("Job", bed.namespace)} <= jobs


# --- faults under load: a pod, PostgreSQL, Redis ---------------------------------------------


def test_losing_a_pod_under_load(bed: Bed, traffic: Traffic, wait_until: Any) -> None:
    """Deleting one of two pods: it leaves the endpoints and drains its connections (it
    answers what it was sent, with `Connection: close`) before it exits."""
    with held_load(traffic, "4. one of two pods deleted") as load:
        started = time.monotonic()
        delete_one_pod(bed, wait_until)
        serving_pods(bed, wait_until)
        load.extra["two_ready_again_s"] = round(time.monotonic() - started, 1)


def test_database_outage(bed: Bed, traffic: Traffic, wait_until: Any) -> None:
    """PostgreSQL stopped for 10 s under load: the database check and the API answer 503
    (with the envelope) within 2 s, /health stays 200, no pod restarts; once it is back
    the app serves again without a restart and every write acknowledged is stored."""
    url = traffic.url
    restarts = pod_restarts(bed)
    ledger = Ledger(traffic)
    with held_load(traffic, "5. PostgreSQL stopped for 10 s", failures_allowed=True) as load:
        ledger.start()
        time.sleep(2)
        bed.postgres.halt()
        stopped = time.monotonic()
        db_down = seconds_until(lambda: http_status(f"{url}/health/db") == 503, stopped)
        api_down = seconds_until(lambda: is_503_envelope(f"{url}/api/v1/topics/"), stopped)
        liveness = [http_status(f"{url}/health") for _ in range(20)]
        time.sleep(max(0.0, 10 - (time.monotonic() - stopped)))
        bed.postgres.resume()
        resumed = time.monotonic()
        back = seconds_until(
            lambda: (
                http_status(f"{url}/health/db") == 200
                and http_status(f"{url}/api/v1/topics/") == 200
            ),
            resumed,
            timeout=60,
        )
        time.sleep(3)
        ledger.stop()
        load.extra |= {
            "health_db_503_after_s": db_down,
            "api_503_after_s": api_down,
            "serving_again_after_s": back,
            "writes_acknowledged": len(ledger.acknowledged),
            "writes_refused": ledger.refused,
        }
    assert db_down <= 2, f"/health/db answered 503 only after {db_down} s"
    assert api_down <= 2, f"the API answered 503 only after {api_down} s"
    assert set(liveness) == {200}, f"/health during the outage: {liveness}"
    assert pod_restarts(bed) == restarts, "a pod restarted during the database outage"
    assert load.during is not None
    assert sum(load.during.socket_errors.values()) == 0, load.report  # every one answered
    assert ledger.acknowledged, "the ledger had no write acknowledged"
    assert ledger.refused, "the ledger had no write refused: was the database down at all?"
    query = "SELECT content FROM comments WHERE content LIKE %s"
    stored = {row[0] for row in sql(bed, query, f"{ledger.mark}%")}
    missing = [c for c in ledger.acknowledged if c not in stored]
    assert not missing, f"{len(missing)} acknowledged writes are not in the database: {missing[:5]}"


def test_redis_outage(bed: Bed, traffic: Traffic, wait_until: Any) -> None:
    """Redis stopped for 10 s under load: nothing fails (rate limits and active users fail
    open), and the app uses Redis again once it is back."""
    import redis

    with held_load(traffic, "6. Redis stopped for 10 s") as load:
        bed.redis.halt()
        time.sleep(10)
        bed.redis.resume()
        resumed = time.monotonic()
        client = redis.Redis.from_url(bed.redis.url)
        # Redis comes back empty: a user marked active again proves the app reconnected.
        load.extra["redis_used_again_after_s"] = seconds_until(
            lambda: bool(client.keys("active_user:*")), resumed, timeout=30
        )
        client.close()


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


def token(secret_key: str, email: str = USER_EMAIL, lifetime: int = 900) -> str:
    """An HS256 JWT for `email`, signed with `secret_key` (what the backend issues)."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": email, "iat": now, "exp": now + lifetime}).encode())
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


def namespace_versions(bed: Bed) -> dict[str, str]:
    """The resourceVersion of every object in the namespace, and of the namespace. Events
    aside: they are the cluster's log, not state anything here writes."""
    kinds = [
        kind
        for kind in kubectl(
            bed, "api-resources", "--verbs=list", "--namespaced", "-o", "name"
        ).split()
        if kind.split(".")[0] != "events"
    ]
    import json

    listed = json.loads(kubectl(bed, "get", ",".join(kinds), "-o", "json"))
    namespace = bed.kube().get("Namespace", bed.namespace) or {}
    versions = {"Namespace": namespace["metadata"]["resourceVersion"]}
    for item in listed["items"]:
        versions[f"{item['kind']}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return versions


def test_bad_input_is_one_line_and_changes_nothing(bed: Bed, tmp_path: Path) -> None:
    """7. Each mistake a user makes is refused with one line naming it, a non-zero exit, and
    every object of the namespace as it was. (`sha-abc123` also shows a short git sha is a
    valid tag: what is missing is its image.)"""
    serving = "sha-" + bed.health()["data"]["deployment"]["sha"]
    good = bed.env_file.read_text()

    def env_with(name: str, **changes: str | None) -> Path:
        lines = [line for line in good.splitlines() if line.split("=", 1)[0] not in changes]
        lines += [f"{key}={value}" for key, value in changes.items() if value is not None]
        path = tmp_path / f".env.{name}"
        path.write_text("\n".join(lines) + "\n")
        return path

    unreachable = tmp_path / "kubeconfig"
    unreachable.write_text(
        re.sub(r"server: \S+", "server: https://127.0.0.1:9", bed.cluster.kubeconfig.read_text())
    )
    cases = [
        ("no SECRET_KEY", env_with("nosecret", SECRET_KEY=None), None, serving, "SECRET_KEY"),
        (
            "CORS_ORIGINS not a list",
            env_with("cors", CORS_ORIGINS='{"origin": "http://eq.example.test"}'),
            None,
            serving,
            "CORS_ORIGINS",
        ),
        ("unknown tag", bed.env_file, None, "sha-abc123", "sha-abc123 not found"),
        (
            "database on localhost",
            env_with("localdb", DATABASE_URL="postgresql://eq:secret@localhost:5432/eq"),
            None,
            serving,
            "DATABASE_URL",
        ),
        ("unreachable API server", bed.env_file, unreachable, serving, "127.0.0.1:9"),
    ]
    before = namespace_versions(bed)
    exits = {}
    for name, env_file, kubeconfig, tag, culprit in cases:
        result = bed.inv("deploy", "--tag", tag, env_file=env_file, kubeconfig=kubeconfig)
        exits[name] = result.returncode
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode != 0, f"{name}: accepted"
        assert len(errors) == 1, f"{name}: {result.stderr}"
        assert errors[0].startswith("error: "), f"{name}: {errors[0]}"
        assert culprit in errors[0], f"{name}: {errors[0]}"
        assert "secret@" not in result.stdout + result.stderr, f"{name}: a password was printed"
        assert namespace_versions(bed) == before, f"{name}: the namespace changed"
    FIGURES.append(
        {"scenario": "7. bad input", "exit_codes": exits, "objects_unchanged": len(before)}
    )


# --- interruption: SIGINT/SIGTERM at a chosen step -----------------------------------------------
# A deploy runs as a child process; the test watches its output and the cluster and sends the
# signal at the step it wants. The figures (signal → exit, signal → previous release serving)
# are printed; run with -s to see them.
MIGRATION_LOCK = 0x65716D696772  # the advisory lock `migrate` holds (eq_backend.migrations)


class Child:
    """`inv <args>` running in the background, its output collected line by line."""

    def __init__(self, bed: Bed, *args: str, env_file: Path | None = None) -> None:
        import threading

        where = ["--context", bed.cluster.context, "--namespace", bed.namespace]
        where += ["--env-file", str(env_file or bed.env_file)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "invoke", "--search-root", str(ROOT), *args, *where],
            cwd=ROOT,
            env={**os.environ, "KUBECONFIG": str(bed.cluster.kubeconfig), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def finish(self, timeout: float = 300) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        sys.stdout.write(
            f"$ inv {' '.join(str(a) for a in self.process.args[5:8])}\n{self.output}\n"
        )
        return code


def soon(check: Any, what: str, child: Child, timeout: float = 180) -> None:
    """Poll `check` every 0.1 s (a rollout here takes seconds; 1 s polls miss it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.process.poll() is None:
        try:
            if check():
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.1)
    pytest.fail(f"{what}: not seen while the deploy ran:\n{child.output}")


def interrupt_and_time(bed: Bed, child: Child, signum: int, previous_sha: str) -> dict[str, float]:
    """Send `signum`; poll the process and /health until the process has exited and ten
    answers in a row (0.1 s apart) come from the previous release. Seconds from the signal."""
    assert child.process.poll() is None, f"the deploy ended before the signal:\n{child.output}"
    started = time.monotonic()
    child.process.send_signal(signum)
    exited = serving = first_ok = 0.0
    streak = 0
    while time.monotonic() - started < 90 and not (exited and serving):
        if not exited and child.process.poll() is not None:
            exited = time.monotonic() - started
        try:
            sha = bed.health()["data"]["deployment"]["sha"]
        except (httpx.HTTPError, KeyError, ValueError):
            sha = ""
        streak = streak + 1 if sha == previous_sha else 0
        if streak == 1:
            first_ok = time.monotonic() - started
        if streak >= 10 and not serving:
            serving = first_ok
        time.sleep(0.1)
    assert exited, "the deploy did not exit within 90 s of the signal"
    assert serving, "the previous release did not serve within 90 s of the signal"
    figures = {"exit": round(exited, 2), "previous_serving": round(serving, 2)}
    print(f"\nINTERRUPT {signal.Signals(signum).name}: {figures}")
    return figures


def test_derive_images_for_interruption(bed: Bed) -> None:
    files = _migration_files(contract=False)  # the database is at EXPAND_REV by now
    for role in ("introll", "intmig_SIGINT", "intmig_SIGTERM", "takeover"):
        tag = "sha-1e7" + uuid.uuid4().hex[:6]
        bed.digests[role] = derive_image(
            bed.registry, REPOSITORY, bed.tags["first"], tag, label=role, files=files
        )
        bed.tags[role] = tag


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_during_the_rollout_rolls_back(bed: Bed, wait_until: Any, signum: int) -> None:
    """SIGINT once the new release answers (both releases serving), SIGTERM as soon as the
    rollout waits: exit 130 within 7.5 s, history says interrupted, the previous release
    serves, and the next deploy goes through (after the SIGTERM case)."""
    previous = bed.deployment()
    previous_sha = bed.health()["data"]["deployment"]["sha"]
    tag = bed.tags["introll"]
    child = Child(bed, "deploy", "--tag", tag, "--no-smoke")
    try:
        soon(lambda: child.said("[6/7] rollout:"), "the rollout to wait", child)
        if signum == signal.SIGINT:
            new_sha = tag.removeprefix("sha-")
            soon(lambda: bed.health()["data"]["deployment"]["sha"] == new_sha, "new pods", child)
        figures = interrupt_and_time(bed, child, signum, previous_sha)
    finally:
        if child.process.poll() is None:
            child.process.kill()
    code = child.finish()
    assert code == 130, child.output
    assert figures["exit"] < 7.5, figures
    name = signal.Signals(signum).name
    assert f"error: interrupted by {name} during rollout (rolled back to " in child.output
    assert "[7/7] rollback   ok" in child.output
    newest = bed.history()[0]
    assert (newest.tag, newest.result) == (tag, "interrupted")
    assert newest.reason.startswith(f"interrupted by {name} during rollout; rolled back to ")
    restored = bed.deployment()
    assert image_of(restored) == image_of(previous)
    # The rollback applied the tool's own fields only, not the defaulted ones it never set.
    ours = [
        m["fieldsV1"]
        for m in restored["metadata"]["managedFields"]
        if m["manager"] == "eq-deploy" and m["operation"] == "Apply"
    ]
    assert ours
    assert "f:dnsPolicy" not in str(ours)
    assert "f:schedulerName" not in str(ours)
    serving_pods(bed, wait_until)  # settles: two ready pods of the previous release, no other
    assert bed.health()["data"]["deployment"]["sha"] == previous_sha
    job = bed.kube().get("Job", f"eq-backend-migrate-{tag}", bed.namespace) or {}
    assert (job.get("status") or {}).get("succeeded") == 1  # the migration had finished
    assert bed.kube().get("Lease", "eq-deploy-lock", bed.namespace) is None
    if signum == signal.SIGTERM:
        again = bed.inv("deploy", "--tag", tag, "--no-smoke")
        assert again.returncode == 0, again.stderr
        assert bed.health()["data"]["deployment"]["sha"] == tag.removeprefix("sha-")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_during_the_migration_leaves_its_job_running(
    bed: Bed, wait_until: Any, signum: int
) -> None:
    """The migration waits on the advisory lock (held here, as another migration would);
    the signal stops the deploy within 7.5 s without touching the Job; a deploy of another
    tag is refused naming it (exit 4); once the lock is free the Job completes, and a deploy
    of its tag waits for it instead of deleting it."""
    import psycopg

    name = signal.Signals(signum).name
    tag = bed.tags[f"intmig_{name}"]
    job = f"eq-backend-migrate-{tag}"
    previous = bed.deployment()
    previous_sha = bed.health()["data"]["deployment"]["sha"]
    with psycopg.connect(bed.postgres.url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        child = Child(bed, "deploy", "--tag", tag, "--no-smoke")
        try:
            wait_until(
                "the migration to wait for the lock",
                lambda: "waiting for another migration" in kubectl(bed, "logs", f"job/{job}"),
                120,
            )
            figures = interrupt_and_time(bed, child, signum, previous_sha)
        finally:
            if child.process.poll() is None:
                child.process.kill()
        code = child.finish()
        assert code == 130, child.output
        assert figures["exit"] < 7.5, figures
        assert (
            f"error: interrupted by {name} during migrate; migration Job {job} left to finish"
            in child.output
        )
        newest = bed.history()[0]
        assert (newest.tag, newest.result) == (tag, "interrupted")
        assert newest.reason.startswith(f"interrupted by {name} during migrate")
        assert (
            bed.deployment()["metadata"]["resourceVersion"]
            == (previous["metadata"]["resourceVersion"])
        )
        running = bed.kube().get("Job", job, bed.namespace) or {}
        assert (running.get("status") or {}).get("active") == 1, running.get("status")

        other = bed.inv("deploy", "--tag", bed.tags["introll"], "--no-smoke")
        assert other.returncode == 4, other.stderr
        assert f"error: migration Job {job} is still running" in other.stderr
        assert (
            bed.deployment()["metadata"]["resourceVersion"]
            == (previous["metadata"]["resourceVersion"])
        )
        holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

    result = bed.inv("deploy", "--tag", tag, "--no-smoke")
    assert result.returncode == 0, result.stderr
    assert "(waited for the run an earlier deploy started)" in result.stdout
    finished = bed.kube().get("Job", job, bed.namespace) or {}
    assert (finished.get("status") or {}).get("succeeded") == 1  # the same Job, never killed
    assert finished["metadata"]["uid"] == running["metadata"]["uid"]
    assert bed.health()["data"]["deployment"]["sha"] == tag.removeprefix("sha-")


def test_a_deploy_that_lost_its_lease_stops_before_its_next_write(
    bed: Bed, wait_until: Any
) -> None:
    """The deploy stalls in its migration (the advisory lock is held here); meanwhile another
    holder takes the Lease over. Once the migration ends, the deploy stops before the
    rollout, says so (exit 3) and writes nothing more: no Deployment change, no history."""
    import psycopg

    tag = bed.tags["takeover"]
    job = f"eq-backend-migrate-{tag}"
    before = bed.deployment()["metadata"]["resourceVersion"]
    revisions = [e.revision for e in bed.history()]
    kube = bed.kube()
    with psycopg.connect(bed.postgres.url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        child = Child(bed, "deploy", "--tag", tag, "--no-smoke")
        try:
            wait_until(
                "the migration to wait for the lock",
                lambda: "waiting for another migration" in kubectl(bed, "logs", f"job/{job}"),
                120,
            )
            lease = kube.get("Lease", "eq-deploy-lock", bed.namespace)
            assert lease is not None
            lease["spec"]["holderIdentity"] = "other@ci pid 9 (deploy sha-0ther)"
            kube.replace(lease)
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    code = child.finish()
    try:
        assert code == 3, child.output
        assert "error: lost the deploy lock to other@ci pid 9 (deploy sha-0ther)" in child.output
        assert "stopped before rollout, changing nothing more" in child.output
        assert bed.deployment()["metadata"]["resourceVersion"] == before
        assert [e.revision for e in bed.history()] == revisions
        lease = kube.get("Lease", "eq-deploy-lock", bed.namespace)
        assert lease is not None
        assert lease["spec"]["holderIdentity"] == "other@ci pid 9 (deploy sha-0ther)"
    finally:
        kube.delete("Lease", "eq-deploy-lock", bed.namespace)


def test_lock_by_hand_then_lock_wait(bed: Bed) -> None:
    """`inv lock acquire -m` freezes deploys (exit 4, naming the reason); `--lock-wait` waits
    for `inv lock release`."""
    import threading

    held = bed.inv("lock", "acquire", "-m", "freeze for incident")
    assert held.returncode == 0, held.stderr
    status = bed.inv("lock", "status")
    assert "(by hand: freeze for incident)" in status.stdout
    refused = bed.inv("rollback", "--no-smoke")
    assert refused.returncode == 4, refused.stderr
    assert "(by hand: freeze for incident)" in refused.stderr
    assert "inv lock release lifts it" in refused.stderr
    release = threading.Timer(3, lambda: bed.inv("lock", "release"))
    release.start()
    waited = bed.inv("deploy", "--tag", bed.tags["takeover"], "--no-smoke", "--lock-wait", "2m")
    release.join()
    assert waited.returncode == 0, waited.stderr
    assert "deploy lock held by" in waited.stdout  # the wait said what it waited for
    assert bed.health()["data"]["deployment"]["sha"] == bed.tags["takeover"].removeprefix("sha-")


def test_a_deploy_killed_mid_way_leaves_a_lock_that_expires(bed: Bed, tmp_path: Path) -> None:
    """8. `kill -9` of a deploy in its rollout: its lease is neither released nor renewed, and
    the next deploy (`--lock-wait`) goes ahead once it is stale, at most the environment's
    lease (`lock_lease_seconds`) after the kill, and finishes what the dead one started."""
    from eq_deploy.environments import load_environment
    from eq_deploy.lock import LOCK_WAIT_POLL

    tag = bed.tags["takeover"]  # serving: the killed deploy changes one setting
    changed = tmp_path / ".env.debug"
    changed.write_text(bed.env_file.read_text() + "LOG_LEVEL=DEBUG\n")
    kube = bed.kube()
    rolled = bed.deployment()["metadata"]["generation"]

    def holder() -> str:
        lease = kube.get("Lease", "eq-deploy-lock", bed.namespace) or {}
        return str(lease.get("spec", {}).get("holderIdentity") or "")

    victim = Child(bed, "deploy", "--tag", tag, "--no-smoke", env_file=changed)
    soon(lambda: bed.deployment()["metadata"]["generation"] > rolled, "the rollout", victim)
    assert f"pid {victim.process.pid} " in holder()
    lease_seconds = kube.get("Lease", "eq-deploy-lock", bed.namespace)["spec"][
        "leaseDurationSeconds"
    ]
    assert lease_seconds == load_environment("local").lock_lease_seconds  # the bed's (default)
    victim.process.kill()
    killed = time.monotonic()
    assert victim.finish() == -signal.SIGKILL
    successor = Child(bed, "deploy", "--tag", tag, "--no-smoke", "--lock-wait", "3m")
    soon(
        lambda: f"pid {successor.process.pid} " in holder(),
        "the next deploy to take the lock",
        successor,
        timeout=lease_seconds + 60,
    )
    taken_over = round(time.monotonic() - killed, 1)
    code = successor.finish()
    FIGURES.append(
        {
            "scenario": "8. deploy killed (-9) holding the lock",
            "lease_s": lease_seconds,
            "lock_free_after_s": taken_over,
        }
    )
    assert code == 0, successor.output
    assert successor.said("deploy lock held by"), successor.output
    assert taken_over <= lease_seconds + LOCK_WAIT_POLL + 1, f"lock taken over after {taken_over} s"
    pods_ready = bed.deployment()["status"]
    assert pods_ready.get("updatedReplicas") == pods_ready.get("readyReplicas") == 2
    assert holder() == ""  # released by the successor


def test_a_context_the_environment_does_not_pin_changes_nothing(bed: Bed) -> None:
    """`--env cloud` (pinned to context prod) against this cluster: one line, exit 2, and
    every object of the namespace keeps its resourceVersion."""
    cloud_env = bed.env_file.with_name(".env.cloud")
    cloud_env.write_text(
        bed.env_file.read_text()
        + "GOOGLE_CLIENT_ID=x\nGOOGLE_CLIENT_SECRET=x\nOPENAI_API_KEY=x\n"
        + "PUBLIC_BASE_URL=https://eq.example.test\n"
    )
    before = namespace_versions(bed)
    result = bed.inv("deploy", "--tag", bed.tags["first"], "--env", "cloud", env_file=cloud_env)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: --env cloud deploys only to context prod")
    assert f"not to context {bed.cluster.context}" in errors[0]
    assert "[2/" not in result.stdout  # stopped in preflight
    assert namespace_versions(bed) == before


def test_prune_of_an_hpa_and_an_ingress_shown_first_by_diff(bed: Bed) -> None:
    """An Ingress (INGRESS_HOST set, then cleared) and an HPA (as a render with `hpa:` left
    it) are shown by `inv diff` as would-delete, kept by --no-prune, deleted by the next
    successful deploy."""
    tag = bed.tags["takeover"]  # serving: the pods do not roll
    kube = bed.kube()
    set_settings(bed, INGRESS_HOST="eq.example.test")
    with_ingress = bed.inv("deploy", "--tag", tag, "--no-smoke")
    assert with_ingress.returncode == 0, with_ingress.stderr
    assert kube.get("Ingress", "eq-backend", bed.namespace) is not None
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": "eq-backend",
            "namespace": bed.namespace,
            "labels": {"eq.deploy/inventory": "app", "app.kubernetes.io/managed-by": "eq-deploy"},
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "eq-backend"},
            "minReplicas": 2,
            "maxReplicas": 3,
        },
    }
    kube.apply(hpa)
    lines = [line for line in bed.env_file.read_text().splitlines() if "INGRESS_HOST" not in line]
    bed.env_file.write_text("\n".join(lines) + "\n")

    shown = bed.inv("diff", "--tag", tag)
    assert shown.returncode == 0, shown.stderr
    assert "- HorizontalPodAutoscaler/eq-backend (would delete)" in shown.stdout
    assert "- Ingress/eq-backend (would delete)" in shown.stdout
    kept = bed.inv("deploy", "--tag", tag, "--no-smoke", "--no-prune")
    assert kept.returncode == 0, kept.stderr
    assert kube.get("Ingress", "eq-backend", bed.namespace) is not None

    pruned = bed.inv("deploy", "--tag", tag, "--no-smoke")
    assert pruned.returncode == 0, pruned.stderr
    assert "- Ingress/eq-backend (deleted)" in pruned.stdout
    assert "- HorizontalPodAutoscaler/eq-backend (deleted)" in pruned.stdout
    assert kube.get("Ingress", "eq-backend", bed.namespace) is None
    assert kube.get("HorizontalPodAutoscaler", "eq-backend", bed.namespace) is None
    assert kube.get("Service", "eq-backend", bed.namespace) is not None
    assert bed.health()["data"]["deployment"]["sha"] == tag.removeprefix("sha-")


def test_exit_codes_and_json(bed: Bed) -> None:
    """Each outcome's exit code and --json result on the real cluster, table-driven."""
    import json

    serving = bed.tags["takeover"]
    cases: list[tuple[str, list[str], int, dict[str, Any]]] = [
        ("unchanged", ["deploy", "--tag", serving, "--no-smoke"], 0, {"changed": False}),
        ("bad tag", ["deploy", "--tag", "latest"], 2, {"result": "usage_error"}),
        (
            "failed migration",
            ["deploy", "--tag", bed.tags["failmig"], "--timeout", "90"],
            1,
            {"result": "failed", "rolled_back_to": ""},
        ),
        (
            "crash, rolled back",
            ["deploy", "--tag", bed.tags["crash_expand"]],
            1,
            {"result": "failed", "rolled_back_to": serving},
        ),
        ("diff, same", ["diff", "--tag", serving, "--exit-code"], 0, {"changed": False}),
        (
            "diff, changes",
            ["diff", "--tag", bed.tags["first"], "--exit-code"],
            2,
            {"changed": True},
        ),
        ("status", ["status"], 0, {"tag": serving, "ready": True}),
    ]
    for name, args, code, fields in cases:
        result = bed.inv(*args, "--json")
        assert result.returncode == code, f"{name}: {result.stderr}"
        data = json.loads(result.stdout)  # stdout is the JSON, progress went to stderr
        for key, value in fields.items():
            assert data[key] == value, f"{name}: {key}={data[key]!r}"
        if args[0] in {"deploy", "rollback"}:
            assert data["exit_code"] == code, name
            assert (data["error"] is None) == (code == 0), name

    held = bed.inv("lock", "acquire", "-m", "json check")
    assert held.returncode == 0, held.stderr
    try:
        refused = bed.inv("rollback", "--json")
        assert refused.returncode == 4, refused.stderr
        assert json.loads(refused.stdout)["result"] == "lock_held"
    finally:
        bed.inv("lock", "release")
    history = bed.inv("history", "--json")
    assert json.loads(history.stdout)[0]["tag"] == bed.tags["crash_expand"]

    logs = bed.inv("logs", "--tail", "3")
    assert logs.returncode == 0, logs.stderr
    assert "[pod/eq-backend-" in logs.stdout


def test_destroy_lists_then_removes_the_app(bed: Bed) -> None:
    """Last: `inv destroy` without --yes lists and changes nothing; with it, nothing the tool
    made is left in the namespace (the namespace stays)."""
    kube = bed.kube()
    before = bed.deployment()["metadata"]["resourceVersion"]
    listed = bed.inv("destroy")
    assert listed.returncode == 2, listed.stderr
    assert "Deployment/eq-backend" in listed.stderr
    assert "pass --yes" in listed.stderr
    assert bed.deployment()["metadata"]["resourceVersion"] == before

    result = bed.inv("destroy", "--yes")
    assert result.returncode == 0, result.stderr
    assert kube.get("Deployment", "eq-backend", bed.namespace) is None
    assert kube.get("Service", "eq-backend", bed.namespace) is None
    assert kube.get("ConfigMap", "eq-deploy-history", bed.namespace) is None
    assert kube.get("Lease", "eq-deploy-lock", bed.namespace) is None
    left = [
        f"{kind}/{o['metadata']['name']}"
        for kind in ("ConfigMap", "Secret", "Job")
        for o in kube.items(kind, bed.namespace, labels="app.kubernetes.io/part-of=eq")
    ]
    assert left == []
    assert kube.get("Namespace", bed.namespace) is not None
