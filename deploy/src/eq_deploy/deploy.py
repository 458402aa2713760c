"""The deploy tool's commands as library functions: deploy, rollback, diff, status, history,
smoke. Each builds named steps and hands them to the runner; nothing here prints directly
except through the reporter."""

from __future__ import annotations

import copy
import difflib
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from eq_deploy import history as hist
from eq_deploy.environments import Environment, load_environment
from eq_deploy.errors import DeployError
from eq_deploy.pipeline import Runner, Status, Step
from eq_deploy.progress import Reporter
from eq_deploy.render import (
    CHECKSUM_ANNOTATION,
    DEPLOYMENT_NAME,
    TAG_ANNOTATION,
    default_image,
    load_manifest,
    redact,
    render_manifests,
)
from eq_deploy.settings import Settings, check_settings, check_tag, load_settings

if TYPE_CHECKING:  # the kubernetes client stays out of imports until a command needs it
    from eq_deploy.kube import Kube

Obj = dict[str, Any]
ALEMBIC_HEAD = re.compile(r"alembic head:\s*(\S+)")
ALEMBIC_ANNOTATION = "eq.deploy/alembic-head"
DB_CHECK_UNKNOWN_EXIT = 3


@dataclass
class Target:
    """Where: environment, kube context, namespace, settings file."""

    environment: str = "local"
    context: str | None = None
    namespace: str | None = None
    env_file: Path | None = None


@dataclass
class DeployOptions:
    tag: str
    target: Target = field(default_factory=Target)
    timeout: float = 300
    dry_run: bool = False
    smoke: bool = True
    smoke_url: str = ""
    rollback_on_failure: bool = True
    allow_tag: bool = False
    force_unlock: bool = False


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


class Session:
    """Settings, environment values and a cluster connection for one command."""

    def __init__(self, target: Target, reporter: Reporter, *, check_required: bool = True) -> None:
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
        self._kube: Kube | None = None

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            from eq_deploy.kube import Kube

            self._kube = Kube(self.context)
        return self._kube

    def connect(self) -> str:
        """Reach the cluster; one line naming the context when it cannot be reached."""
        return self.kube.version()

    def where(self) -> str:
        kube = self.kube
        return (
            f"context {kube.context} ({kube.server}) · namespace {self.namespace} "
            f"· env {self.env.name}"
        )

    def values(self, runtime: Mapping[str, str]) -> dict[str, str]:
        return {**self.settings.values, **runtime}


# --- deploy -------------------------------------------------------------------------------------
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


def keep_runtime_if_unchanged(objects: list[Obj], live: Obj | None) -> bool:
    """When the live Deployment already runs the same image with the same settings, keep its
    DEPLOYED_AT/DEPLOY_BY so re-deploying the same tag changes nothing (no new rollout).
    Returns True when the pod template is unchanged."""
    if live is None:
        return False
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    new_tpl, live_tpl = deployment["spec"]["template"], live["spec"]["template"]
    new_c, live_c = new_tpl["spec"]["containers"][0], live_tpl["spec"]["containers"][0]
    same = new_c["image"] == live_c.get("image") and (
        (new_tpl["metadata"].get("annotations") or {}).get(CHECKSUM_ANNOTATION)
        == (live_tpl["metadata"].get("annotations") or {}).get(CHECKSUM_ANNOTATION)
    )
    if not same:
        return False
    live_env = {e["name"]: e.get("value", "") for e in live_c.get("env") or []}
    for item in new_c["env"]:
        if item["name"] in ("DEPLOYED_AT", "DEPLOY_BY") and item["name"] in live_env:
            item["value"] = live_env[item["name"]]
    return True


def deploy(opts: DeployOptions, reporter: Reporter) -> Outcome:
    """Preflight, then namespace → lock → config → migrate → rollout → smoke → record."""
    from eq_deploy.lock import DeployLock, force_unlock, who

    tag = check_tag(opts.tag, allow_tag=opts.allow_tag)
    session = Session(opts.target, reporter)
    total = 3 if opts.dry_run else 7 + int(opts.smoke)
    runner = Runner(reporter, total)
    state: dict[str, Any] = {}

    def preflight() -> str:
        version = session.connect()
        reporter.line(session.where() + f" · kubernetes {version}")
        image, digest = resolve_image(session, tag)
        runtime = {
            "DEPLOYED_AT": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "DEPLOY_BY": who(),
        }
        objects = render_manifests(
            session.env.name, tag, image=image, values=session.values(runtime), redact_secrets=False
        )
        live = session.kube.get("Deployment", DEPLOYMENT_NAME, session.namespace)
        state.update(
            image=image,
            digest=digest,
            objects=objects,
            live=live,
            unchanged=keep_runtime_if_unchanged(objects, live),
        )
        return f"image {image}"

    runner.run(Step("preflight", preflight))
    objects: list[Obj] = state["objects"]
    image: str = state["image"]
    digest: str = state["digest"]
    by_kind = {o["kind"]: o for o in objects}

    if opts.dry_run:
        changes: list[str] = []
        runner.run(Step("dry-run", lambda: _dry_run_note(session, objects, changes)))
        runner.run(Step("diff", lambda: _print_diff(reporter, changes)))
        return Outcome(
            tag,
            image,
            digest,
            runner.elapsed,
            {},
            changed=any(not c.startswith("=") for c in changes),
            note="dry run: nothing changed",
        )

    runner.run(Step("namespace", lambda: _apply_note(session, [by_kind["Namespace"]])))
    lock = DeployLock(session.kube, session.namespace, f"deploy {tag}")

    def take_lock() -> str:
        note = ""
        if opts.force_unlock:
            holder = force_unlock(session.kube, session.namespace)
            note = f"removed lock of {holder}; " if holder else ""
        lock.acquire()
        if lock.took_over:
            note += f"took over stale lock of {lock.took_over}; "
        return note + f"held by {lock.holder}"

    runner.run(Step("lock", take_lock))
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = hist.Entry(
        revision=0,
        action="deploy",
        tag=tag,
        image=image,
        digest=digest,
        git_sha=_deploy_sha(by_kind["Deployment"]),
        at=started_at,
        by=who(),
        result=hist.FAILED,
        environment=session.env.name,
    )
    try:
        runner.run(
            Step("config", lambda: _apply_note(session, [by_kind["ConfigMap"], by_kind["Secret"]]))
        )
        migrate = _migrate_step(session, by_kind["Job"], opts.timeout, state)
        try:
            runner.run(migrate)
        except DeployError as exc:
            entry.reason = f"migration: {exc.message}"
            _record(session, entry, runner)
            raise
        entry.alembic_head = state.get("alembic_head", "")
        rest = [o for o in objects if o["kind"] not in {"Namespace", "ConfigMap", "Secret", "Job"}]
        entry.deployment = hist.pack_deployment(by_kind["Deployment"])
        url = ""
        try:
            runner.run(
                Step(
                    "rollout",
                    lambda: _apply_note(session, rest),
                    lambda status: _wait_rollout(
                        session, opts.timeout, status, unchanged=state["unchanged"]
                    ),
                )
            )
            if opts.smoke:
                runner.run(
                    Step(
                        "smoke",
                        lambda: None,
                        lambda status: _smoke_note(
                            session, opts, image, by_kind["Deployment"], status, state
                        ),
                    )
                )
                url = state.get("url", "")
        except DeployError as exc:
            entry.reason = exc.message
            previous = state["live"]
            if opts.rollback_on_failure and previous is not None and not state["unchanged"]:
                try:
                    _auto_rollback(session, runner, previous, opts.timeout)
                except DeployError as rollback_exc:
                    entry.reason += f"; rollback to {_tag_of(previous)} failed too"
                    exc.message += (
                        f" (rollback to {_tag_of(previous)} failed too: {rollback_exc.message})"
                    )
                else:
                    entry.reason += f"; rolled back to {_tag_of(previous)}"
                    exc.message = f"{exc.message} (rolled back to {_tag_of(previous)})"
            elif previous is None:
                exc.message += " (no previous Deployment to roll back to)"
            _record(session, entry, runner)
            raise
        entry.result = hist.SUCCEEDED
        entry.duration_seconds = round(runner.elapsed, 2)
        runner.run(Step("record", lambda: _record(session, entry, runner)))
    finally:
        lock.release()
    outcome = Outcome(
        tag,
        image,
        digest,
        runner.elapsed,
        {
            "migrate": runner.waited("migrate"),
            "rollout": runner.waited("rollout"),
            "smoke": runner.waited("smoke"),
        },
        url=url,
        changed=not state["unchanged"],
        alembic_head=entry.alembic_head,
    )
    reporter.line(
        f"deployed {tag} ({digest or 'no digest'}) to {session.namespace} in {outcome.seconds:.1f}s"
        + (f" → {url}" if url else "")
        + ("" if outcome.changed else " (pods unchanged)")
    )
    return outcome


def _deploy_sha(deployment: Obj) -> str:
    for item in deployment["spec"]["template"]["spec"]["containers"][0].get("env") or []:
        if item["name"] == "DEPLOY_SHA":
            return str(item.get("value", ""))
    return ""


def _tag_of(deployment: Obj) -> str:
    annotations = deployment["metadata"].get("annotations") or {}
    return str(
        annotations.get(TAG_ANNOTATION)
        or deployment["spec"]["template"]["spec"]["containers"][0].get("image")
    )


def _apply_note(session: Session, objects: list[Obj]) -> str:
    names = []
    for obj in objects:
        session.kube.apply(obj)
        names.append(f"{obj['kind']}/{obj['metadata']['name']}")
    return ", ".join(names)


def _record(session: Session, entry: hist.Entry, runner: Runner) -> str:
    entry.duration_seconds = round(runner.elapsed, 2)
    try:
        hist.record(session.kube, session.namespace, entry)
    except DeployError as exc:
        session.reporter.line(f"warning: history not recorded: {exc.message}")
        return "not recorded"
    return f"revision {entry.revision}: {entry.tag} {entry.result}"


def _migrate_step(session: Session, job: Obj, timeout: float, state: dict[str, Any]) -> Step:
    from eq_deploy.waits import job_logs, wait_for_job

    kube, ns, name = session.kube, session.namespace, job["metadata"]["name"]
    image = job["spec"]["template"]["spec"]["containers"][0]["image"]

    def apply() -> str:
        job["spec"]["activeDeadlineSeconds"] = int(timeout)
        live = kube.get("Job", name, ns)
        if live is not None:
            live_image = live["spec"]["template"]["spec"]["containers"][0]["image"]
            done = any(
                c.get("type") == "Complete" and c.get("status") == "True"
                for c in (live.get("status") or {}).get("conditions") or []
            )
            head = (live["metadata"].get("annotations") or {}).get(ALEMBIC_ANNOTATION, "")
            if done and live_image == image and head:
                state["alembic_head"] = head
                state["migrate_skipped"] = True
                return "already ran for this build"
            # A failed or different run of this tag: its template is immutable, so replace it.
            kube.delete("Job", name, ns, propagation="Foreground")
            _wait_gone(kube, "Job", name, ns, timeout=60)
        kube.apply(job)
        return f"Job/{name}"

    def wait(status: Status) -> str:
        if state.get("migrate_skipped"):
            return f"alembic head {state['alembic_head']} (already ran for this build)"
        wait_for_job(kube, ns, name, timeout, status)
        logs = job_logs(kube, ns, name)
        heads = ALEMBIC_HEAD.findall(logs)
        if not heads:
            raise DeployError(
                f"migration Job {name} completed without reporting 'alembic head: <rev>'; "
                "the Deployment was not touched",
                detail="migration log:\n" + (logs.strip() or "(empty)"),
            )
        state["alembic_head"] = heads[-1]
        kube.request(
            "PATCH",
            _path("Job", name, ns),
            body={"metadata": {"annotations": {ALEMBIC_ANNOTATION: heads[-1]}}},
            content_type="application/merge-patch+json",
        )
        for line in logs.strip().splitlines()[-5:]:
            session.reporter.line(f"    migrate | {line}")
        return f"alembic head {heads[-1]}"

    return Step("migrate", apply, wait)


def _path(kind: str, name: str, ns: str) -> str:
    from eq_deploy.kube import path_for

    return path_for(kind, name, ns)


def _wait_gone(kube: Kube, kind: str, name: str, ns: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while kube.get(kind, name, ns) is not None:
        if time.monotonic() > end:
            raise DeployError(f"{kind} {name} still exists {timeout:.0f}s after deleting it")
        time.sleep(0.5)


def _wait_rollout(session: Session, timeout: float, status: Status, *, unchanged: bool) -> str:
    from eq_deploy.waits import wait_for_rollout

    t0 = time.monotonic()
    deployment = wait_for_rollout(session.kube, session.namespace, DEPLOYMENT_NAME, timeout, status)
    ready = (deployment.get("status") or {}).get("availableReplicas", 0)
    if unchanged:
        return f"pods unchanged ({ready} available)"
    return f"Deployments stabilized in {time.monotonic() - t0:.2f}s ({ready} available)"


def _smoke_note(
    session: Session,
    opts: DeployOptions,
    image: str,
    deployment: Obj,
    status: Status,
    state: dict[str, Any],
) -> str:
    from eq_deploy.access import service_url
    from eq_deploy.smoke import smoke

    with service_url(
        session.kube, session.namespace, explicit=opts.smoke_url, env_url=session.env.smoke_url
    ) as url:
        state["url"] = url
        return smoke(
            url,
            expect_sha=_deploy_sha(deployment),
            expect_image=image,
            deadline=min(opts.timeout, 90),
            status=status,
        )


def _auto_rollback(session: Session, runner: Runner, previous: Obj, timeout: float) -> None:
    from eq_deploy.kube import strip_server_fields

    body = strip_server_fields(previous)
    runner.total += 1
    runner.run(
        Step(
            "rollback",
            lambda: _apply_note(session, [body]) + f" back to {_tag_of(previous)}",
            lambda status: _wait_rollout(session, timeout, status, unchanged=False),
        )
    )


# --- dry run and diff ---------------------------------------------------------------------------
def _dry_run_note(session: Session, objects: list[Obj], changes: list[str]) -> str:
    changes.extend(diff_objects(session, objects))
    changed = sum(1 for c in changes if not c.startswith("="))
    return f"{changed} of {len(objects)} object(s) would change"


def _print_diff(reporter: Reporter, changes: list[str]) -> str:
    for change in changes:
        reporter.detail(change, indent="  ")
    return ""


def diff_objects(session: Session, objects: list[Obj]) -> list[str]:
    """One block per object: `+ Kind/name` (new, shown whole), `~ Kind/name` with a unified
    diff of live → server-side dry-run, or `= Kind/name` unchanged. Secrets redacted."""
    kube = session.kube
    namespace_exists = kube.get("Namespace", session.namespace) is not None
    out: list[str] = []
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        label = f"{kind}/{name}"
        live = (
            kube.get(kind, name, obj["metadata"].get("namespace"))
            if (namespace_exists or kind == "Namespace")
            else None
        )
        if live is None:
            shown = yaml.safe_dump(redact(obj), sort_keys=False)
            out.append(
                f"+ {label} (new)\n" + "\n".join("+   " + line for line in shown.splitlines())
            )
            continue
        if kind == "Job":
            out.append(_job_change(label, obj, live))
            continue
        from eq_deploy.kube import strip_server_fields

        dry = kube.apply(obj, dry_run=True)
        before, after = (
            _comparable(strip_server_fields(live)),
            _comparable(strip_server_fields(dry)),
        )
        if before == after:
            out.append(f"= {label}")
            continue
        if kind == "Secret":
            before, after = _redacted_pair(before, after)
        diff = difflib.unified_diff(
            yaml.safe_dump(before, sort_keys=True).splitlines(),
            yaml.safe_dump(after, sort_keys=True).splitlines(),
            "live",
            "deploy",
            lineterm="",
            n=2,
        )
        out.append(f"~ {label}\n" + "\n".join("    " + line for line in list(diff)[2:]))
    return out


def _job_change(label: str, job: Obj, live: Obj) -> str:
    image = job["spec"]["template"]["spec"]["containers"][0]["image"]
    live_image = live["spec"]["template"]["spec"]["containers"][0]["image"]
    complete = any(
        c.get("type") == "Complete" and c.get("status") == "True"
        for c in (live.get("status") or {}).get("conditions") or []
    )
    if complete and image == live_image:
        return f"= {label} (completed for this build; not run again)"
    why = "another image" if image != live_image else "it did not complete"
    return f"~ {label} (would be deleted and run again: {why})"


def _comparable(obj: Obj) -> Obj:
    obj = copy.deepcopy(obj)
    obj.get("metadata", {}).pop("namespace", None) if obj.get("kind") == "Namespace" else None
    return obj


def _redacted_pair(before: Obj, after: Obj) -> tuple[Obj, Obj]:
    b, a = dict(before.get("data") or {}), dict(after.get("data") or {})
    before = {**before, "data": {k: "REDACTED" for k in b}}
    after = {
        **after,
        "data": {k: ("REDACTED" if b.get(k) == v else "REDACTED (changed)") for k, v in a.items()},
    }
    return before, after


def diff(tag: str, target: Target, reporter: Reporter, *, allow_tag: bool = False) -> bool:
    """Print what `deploy --tag` would change; True when something would."""
    outcome = deploy(
        DeployOptions(tag=tag, target=target, dry_run=True, allow_tag=allow_tag), reporter
    )
    return outcome.changed


# --- rollback -----------------------------------------------------------------------------------
@dataclass
class RollbackOptions:
    to: str | None = None
    target: Target = field(default_factory=Target)
    timeout: float = 300
    force: bool = False
    smoke: bool = True
    smoke_url: str = ""
    force_unlock: bool = False


def rollback(opts: RollbackOptions, reporter: Reporter) -> Outcome:
    """Re-apply a prior successful deploy's Deployment (not its migration), after checking the
    live schema is one the target build knows; smoke; record."""
    from eq_deploy.lock import DeployLock, force_unlock, who

    session = Session(opts.target, reporter, check_required=False)
    runner = Runner(reporter, 5 + int(opts.smoke))
    state: dict[str, Any] = {}

    def preflight() -> str:
        reporter.line(session.where() + f" · kubernetes {session.connect()}")
        entries = hist.read_history(session.kube, session.namespace)
        live = session.kube.get("Deployment", DEPLOYMENT_NAME, session.namespace)
        current = live["spec"]["template"]["spec"]["containers"][0]["image"] if live else ""
        target = hist.rollback_target(entries, current, opts.to)
        state.update(entry=target, live=live, current=current)
        return f"target {target.tag} (revision {target.revision}, {target.image})"

    runner.run(Step("preflight", preflight))
    target: hist.Entry = state["entry"]
    lock = DeployLock(session.kube, session.namespace, f"rollback to {target.tag}")

    def take_lock() -> str:
        if opts.force_unlock:
            force_unlock(session.kube, session.namespace)
        lock.acquire()
        return f"held by {lock.holder}"

    runner.run(Step("lock", take_lock))
    entry = hist.Entry(
        revision=0,
        action="rollback",
        tag=target.tag,
        image=target.image,
        digest=target.digest,
        git_sha=target.git_sha,
        at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        by=who(),
        result=hist.FAILED,
        alembic_head=target.alembic_head,
        environment=session.env.name,
        deployment=target.deployment,
    )
    url = ""
    try:
        runner.run(
            Step(
                "schema", lambda: None, lambda status: _schema_check(session, target, opts, status)
            )
        )
        deployment = target.deployment_object()
        assert deployment is not None
        deployment["metadata"]["namespace"] = session.namespace
        try:
            runner.run(
                Step(
                    "rollout",
                    lambda: _apply_note(session, [deployment]) + f" {target.tag}",
                    lambda status: _wait_rollout(session, opts.timeout, status, unchanged=False),
                )
            )
            if opts.smoke:
                smoke_opts = DeployOptions(
                    tag=target.tag,
                    target=opts.target,
                    timeout=opts.timeout,
                    smoke_url=opts.smoke_url,
                )
                runner.run(
                    Step(
                        "smoke",
                        lambda: None,
                        lambda status: _smoke_note(
                            session, smoke_opts, target.image, deployment, status, state
                        ),
                    )
                )
                url = state.get("url", "")
        except DeployError as exc:
            entry.reason = exc.message
            _record(session, entry, runner)
            raise
        entry.result = hist.SUCCEEDED
        runner.run(Step("record", lambda: _record(session, entry, runner)))
    finally:
        lock.release()
    reporter.line(
        f"rolled back to {target.tag} ({target.digest or target.image}) in {runner.elapsed:.1f}s"
        + (f" → {url}" if url else "")
    )
    return Outcome(
        target.tag,
        target.image,
        target.digest,
        runner.elapsed,
        {
            "schema": runner.waited("schema"),
            "rollout": runner.waited("rollout"),
            "smoke": runner.waited("smoke"),
        },
        url=url,
        alembic_head=target.alembic_head,
    )


def _schema_check(
    session: Session, target: hist.Entry, opts: RollbackOptions, status: Status
) -> str:
    """Run `python -m eq_backend db-check` with the TARGET image as a short Job: exit 0 when
    the database's Alembic revision is one that build knows, 3 when it is not."""
    from eq_deploy.waits import job_logs, job_pod

    kube, ns = session.kube, session.namespace
    job = load_manifest("Job")
    name = f"eq-backend-dbcheck-{secrets.token_hex(3)}"
    job["metadata"].update(name=name, namespace=ns)
    job["metadata"]["labels"]["app.kubernetes.io/component"] = "db-check"
    job["spec"]["ttlSecondsAfterFinished"] = 600
    job["spec"]["activeDeadlineSeconds"] = 120
    container = job["spec"]["template"]["spec"]["containers"][0]
    container.update(
        name="db-check", image=target.image, args=["python", "-m", "eq_backend", "db-check"]
    )
    job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = "db-check"
    kube.apply(job)
    end = time.monotonic() + 120
    exit_code: int | None = None
    try:
        while exit_code is None:
            pod = job_pod(kube, ns, name)
            for cs in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
                term = (cs.get("state") or {}).get("terminated")
                if term:
                    exit_code = int(term.get("exitCode", 1))
                waiting = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
                if waiting in {"ImagePullBackOff", "ErrImagePull", "InvalidImageName"}:
                    raise DeployError(
                        f"schema check: image {target.image} cannot be pulled ({waiting})"
                    )
            if exit_code is None:
                if time.monotonic() > end:
                    raise DeployError(f"schema check Job {name} did not finish in 120s")
                status(f"db-check with {target.tag}")
                time.sleep(0.5)
        logs = job_logs(kube, ns, name).strip()
    finally:
        kube.delete("Job", name, ns, propagation="Background")
    last = logs.splitlines()[-1] if logs else ""
    if exit_code == 0:
        return f"database schema known to {target.tag}" + (f" ({last})" if last else "")
    if exit_code == DB_CHECK_UNKNOWN_EXIT:
        if opts.force:
            session.reporter.line(
                f"warning: live schema is unknown to {target.tag}; going on (--force)"
            )
            return "schema unknown to target, forced"
        raise DeployError(
            f"the database's schema is newer than {target.tag} knows "
            f"({last or 'db-check exit 3'}); "
            "rolling back the code would run it against an unknown schema (--force overrides)"
        )
    raise DeployError(
        f"schema check with {target.tag} failed (exit {exit_code}): {last}", detail=logs
    )


# --- read-only commands -------------------------------------------------------------------------
def show_history(target: Target, reporter: Reporter, *, as_json: bool = False) -> list[hist.Entry]:
    session = Session(target, reporter, check_required=False)
    entries = hist.read_history(session.kube, session.namespace)
    if as_json:
        reporter.line(json.dumps([e.summary() for e in entries], indent=2))
    else:
        reporter.line(f"history of {session.namespace} ({session.kube.context}):")
        reporter.line(hist.format_history(entries))
    return entries


def show_status(target: Target, reporter: Reporter) -> dict[str, Any]:
    from eq_deploy.lock import LOCK_NAME, lease_expiry
    from eq_deploy.waits import fatal_container_state, rollout_state

    session = Session(target, reporter, check_required=False)
    kube, ns = session.kube, session.namespace
    reporter.line(session.where() + f" · kubernetes {session.connect()}")
    deployment = kube.get("Deployment", DEPLOYMENT_NAME, ns)
    if deployment is None:
        reporter.line(f"Deployment {DEPLOYMENT_NAME}: not deployed in {ns}")
        return {"deployed": False}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
    try:
        done, text = rollout_state(deployment)
    except DeployError as exc:
        done, text = False, exc.message
    reporter.line(
        f"Deployment {DEPLOYMENT_NAME}: {_tag_of(deployment)} · "
        f"{'ready' if done else 'NOT ready'}: {text}"
    )
    reporter.line(f"  image {container['image']}")
    reporter.line(
        f"  deployed {env.get('DEPLOYED_AT', '?')} by {env.get('DEPLOY_BY', '?')} "
        f"(sha {env.get('DEPLOY_SHA', '?')})"
    )
    selector = ",".join(
        f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items()
    )
    for pod in kube.items("Pod", ns, labels=selector):
        statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
        restarts = sum(cs.get("restartCount", 0) for cs in statuses)
        problem = fatal_container_state(pod) or ""
        reporter.line(
            f"  pod {pod['metadata']['name']}: {pod['status'].get('phase')} "
            f"restarts {restarts} {problem}".rstrip()
        )
    entries = hist.read_history(kube, ns)
    if entries:
        e = entries[0]
        reporter.line(
            f"last deploy: revision {e.revision} {e.action} {e.tag} {e.result} at {e.at} by {e.by}"
            + (f" ({e.reason})" if e.reason else "")
        )
    lease = kube.get("Lease", LOCK_NAME, ns)
    if lease is not None:
        expiry = lease_expiry(lease)
        reporter.line(f"lock: held by {lease['spec'].get('holderIdentity')} until {expiry}")
    return {"deployed": True, "ready": done, "image": container["image"]}


def run_smoke(target: Target, reporter: Reporter, *, url: str = "", deadline: float = 60) -> str:
    from eq_deploy.access import service_url
    from eq_deploy.smoke import smoke

    session = Session(target, reporter, check_required=False)
    deployment = (
        session.kube.get("Deployment", DEPLOYMENT_NAME, session.namespace) if not url else None
    )
    expect = _deploy_sha(deployment) if deployment else ""
    with service_url(
        session.kube, session.namespace, explicit=url, env_url=session.env.smoke_url
    ) as base:
        note = smoke(base, expect_sha=expect, deadline=deadline, status=reporter.status)
    reporter.line(f"smoke ok: {note}")
    return note
