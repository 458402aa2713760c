"""What every command shares: where it works (Target), the settings, environment and
cluster connection of one command (Session), its result (Outcome), and the steps' common
parts (apply, record, wait for the rollout, smoke).

The Kubernetes facade can be handed in (`Session(..., kube=...)`), so the flows run in unit
tests against an in-memory cluster as well as against a real one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eq_deploy import history as hist
from eq_deploy import podspec
from eq_deploy.environments import Environment, load_environment
from eq_deploy.errors import DeployError, LockHeld
from eq_deploy.interrupt import Interrupted
from eq_deploy.pipeline import Runner, Status
from eq_deploy.progress import Reporter
from eq_deploy.render import DEPLOYMENT_NAME, SERVICE_NAME, TAG_ANNOTATION, default_image
from eq_deploy.settings import Settings, check_settings, load_settings

if TYPE_CHECKING:  # the kubernetes client stays out of imports until a command needs it
    from eq_deploy.kube import Kube

Obj = dict[str, Any]


@dataclass
class Target:
    """Where: environment, kube context, namespace, settings file."""

    environment: str = "local"
    context: str | None = None
    namespace: str | None = None
    env_file: Path | None = None


@dataclass
class Outcome:
    """What a command did, for the summary line, history and benchmarks."""

    tag: str
    image: str
    digest: str
    seconds: float
    waited: dict[str, float]
    url: str = ""
    changed: bool = True
    alembic_head: str = ""
    note: str = ""
    revision: int = 0  # its history entry


class Session:
    """Settings, environment values and a cluster connection for one command."""

    def __init__(
        self,
        target: Target,
        reporter: Reporter,
        *,
        check_required: bool = True,
        kube: Kube | None = None,
    ) -> None:
        self.target = target
        self.reporter = reporter
        self.env: Environment = load_environment(target.environment)
        settings = load_settings(target.env_file)
        if target.namespace:
            settings = Settings(
                {**settings.values, "K8S_NAMESPACE": target.namespace}, settings.source
            )
        self.settings = check_settings(settings, self.env.required if check_required else ())
        self.namespace = self.settings.get("K8S_NAMESPACE") or self.env.namespace
        self.context = target.context or self.settings.get("KUBE_CONTEXT") or None
        self._kube: Kube | None = kube

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            from eq_deploy.kube import Kube

            self._kube = Kube(self.context)
        return self._kube

    def connect(self) -> str:
        """Check the cluster is one the environment pins (before any call to it), then reach
        it; one line naming the context when it is not or cannot be reached."""
        self.env.check_cluster(self.kube.context, self.kube.server)
        return self.kube.version()

    def where(self) -> str:
        kube = self.kube
        return (
            f"context {kube.context} ({kube.server}) · namespace {self.namespace} "
            f"· env {self.env.name}"
        )

    def values(self, runtime: Mapping[str, str]) -> dict[str, str]:
        return {**self.settings.values, **runtime}

    def live_deployment(self) -> Obj | None:
        return self.kube.get("Deployment", DEPLOYMENT_NAME, self.namespace)

    def history(self) -> list[hist.Entry]:
        return hist.read_history(self.kube, self.namespace)


def release_of(deployment: Obj | None) -> tuple[str, str, str]:
    """(image, ConfigMap, Secret) a Deployment runs: what identifies its release."""
    if deployment is None:
        return ("", "", "")
    return (podspec.image(deployment), *podspec.settings_refs(deployment))


def tag_of(deployment: Obj) -> str:
    annotations = deployment["metadata"].get("annotations") or {}
    return str(annotations.get(TAG_ANNOTATION) or podspec.image(deployment))


def deploy_sha(deployment: Obj) -> str:
    return podspec.env_literals(deployment).get("DEPLOY_SHA", "")


def resolve_image(session: Session, tag: str) -> tuple[str, str]:
    """(digest-pinned reference, digest) of `tag`, checking the image exists where the
    cluster gets it from."""
    from eq_deploy.images import parse_image
    from eq_deploy.registry import image_on_nodes, missing_platforms, resolve

    ref = default_image(session.env.name, tag, session.settings.values)
    if session.env.image_source == "nodes":
        present, digest = image_on_nodes(session.kube.items("Node"), ref)
        if not present:
            raise DeployError(
                f"image {ref} is not on every node (load it, e.g. kind load docker-image)"
            )
        return (str(parse_image(ref).pinned(digest)) if digest else ref), digest
    digest, platforms = resolve(ref)
    pinned = str(parse_image(ref).pinned(digest))
    # The manual process met ImagePullBackOff on arm64 nodes with an amd64-only image.
    missing = missing_platforms(session.kube.items("Node"), platforms)
    if missing:
        node, platform = next(iter(missing.items()))
        raise DeployError(
            f"image {ref} is built for {', '.join(sorted(platforms))} but node {node} is "
            f"{platform} (inv build --platform linux/amd64,linux/arm64)"
        )
    return pinned, digest


def apply_note(session: Session, objects: list[Obj]) -> str:
    names = []
    for obj in objects:
        session.kube.apply(obj)
        names.append(f"{obj['kind']}/{obj['metadata']['name']}")
    return ", ".join(names)


def record(session: Session, entry: hist.Entry, runner: Runner) -> str:
    """Add `entry` to the cluster's history; a failure to record is a warning, not a failed
    deploy (what ran, ran)."""
    entry.duration_seconds = round(runner.elapsed, 2)
    try:
        hist.record(session.kube, session.namespace, entry)
    except DeployError as exc:
        session.reporter.line(f"warning: history not recorded: {exc.message}")
        return "not recorded"
    return f"revision {entry.revision}: {entry.tag} {entry.result}"


def wait_rollout(
    session: Session, timeout: float, status: Status, *, unchanged: bool, diagnose: bool = True
) -> str:
    from eq_deploy.waits import wait_for_rollout

    t0 = time.monotonic()
    deployment = wait_for_rollout(
        session.kube,
        session.namespace,
        DEPLOYMENT_NAME,
        timeout,
        status,
        diagnose=diagnose,
        service=SERVICE_NAME,
    )
    ready = (deployment.get("status") or {}).get("availableReplicas", 0)
    if unchanged:
        return f"pods unchanged ({ready} available)"
    return f"Deployments stabilized in {time.monotonic() - t0:.2f}s ({ready} available)"


# How long the smoke waits for the Service's own address (the environment's URL, a load
# balancer, a NodePort) before it falls back to a port-forward. A new Service's endpoints
# reach each node's proxy rules a moment after the API lists them (kube-proxy syncs at
# most once a second): on a first deploy the address refuses for about that long, and a
# smoke through a port-forward would pass while users are refused.
SERVICE_ADDRESS_GRACE_SECONDS = 5.0


@dataclass
class SmokeResult:
    url: str = ""


def smoke_deployment(
    session: Session,
    deployment: Obj,
    status: Status,
    *,
    explicit_url: str,
    deadline: float,
    into: SmokeResult | None = None,
) -> str:
    """Smoke checks through the Service: /health must report `deployment`'s sha and image."""
    from eq_deploy.access import service_url
    from eq_deploy.smoke import smoke

    with service_url(
        session.kube,
        session.namespace,
        explicit=explicit_url,
        env_url=session.env.smoke_url,
        wait_for_any=SERVICE_ADDRESS_GRACE_SECONDS,
    ) as url:
        if into is not None:
            into.url = url
        return smoke(
            url,
            expect_sha=deploy_sha(deployment),
            expect_image=podspec.image(deployment),
            deadline=min(deadline, 90),
            status=status,
        )


def wait_gone(kube: Kube, kind: str, name: str, ns: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while kube.get(kind, name, ns) is not None:
        if time.monotonic() > end:
            raise DeployError(f"{kind} {name} still exists {timeout:.0f}s after deleting it")
        time.sleep(0.5)


def run_job(
    session: Session,
    job: Obj,
    status: Status,
    *,
    timeout: float,
    what: str,
) -> tuple[int, str]:
    """Run a short Job to its end; (exit code of its container, its log). Fails fast when its
    image cannot be pulled. The Job is deleted afterwards."""
    from eq_deploy.waits import job_logs, job_pod

    kube, ns, name = session.kube, session.namespace, job["metadata"]["name"]
    kube.apply(job)
    end = time.monotonic() + timeout
    exit_code: int | None = None
    interrupted = False
    try:
        while exit_code is None:
            pod = job_pod(kube, ns, name)
            for cs in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
                term = (cs.get("state") or {}).get("terminated")
                if term:
                    exit_code = int(term.get("exitCode", 1))
                waiting = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
                if waiting in {"ImagePullBackOff", "ErrImagePull", "InvalidImageName"}:
                    raise DeployError(f"{what}: image {podspec.image(job)} cannot be pulled")
            if exit_code is None:
                if time.monotonic() > end:
                    raise DeployError(f"{what}: Job {name} did not finish in {timeout:.0f}s")
                status(f"{what} ({name})")
                time.sleep(0.5)
        logs = job_logs(kube, ns, name).strip()
    except Interrupted:
        # Left to run to its end (its ttlSecondsAfterFinished removes it): a downgrade
        # killed halfway is worse than one that finishes after we are gone.
        interrupted = True
        raise
    finally:
        if not interrupted:
            kube.delete("Job", name, ns, propagation="Background")
    return exit_code, logs


SCHEMA_JOBS = {"migrate", "downgrade"}  # the Jobs that change the schema


def running_migrations(kube: Kube, namespace: str) -> list[str]:
    """Names of the Jobs changing the schema that have not ended (neither complete nor
    failed)."""
    jobs = kube.items("Job", namespace, labels="app.kubernetes.io/name=eq-backend")
    return sorted(
        job["metadata"]["name"]
        for job in jobs
        if (job["metadata"].get("labels") or {}).get("app.kubernetes.io/component") in SCHEMA_JOBS
        and not podspec.job_complete(job)
        and not podspec.job_failed(job)
    )


def refuse_while_migrating(session: Session, doing: str, *, own_job: str = "") -> None:
    """The lock covers migration Jobs too: a Job left running by an interrupted deploy keeps
    the namespace busy until it ends (killing it could stop `alembic upgrade` halfway, and a
    second migration beside it would race it). Its own tag's deploy waits for it instead."""
    others = [
        name for name in running_migrations(session.kube, session.namespace) if name != own_job
    ]
    if others:
        raise LockHeld(
            f"migration Job {others[0]} is still running in {session.namespace}; {doing} "
            f"waits until it ends (deploying its tag again waits for it; never delete it "
            "mid-run)"
        )
