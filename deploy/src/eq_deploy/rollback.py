"""`inv rollback` as a plan: go back to a prior successful release, code and settings
together (`--keep-settings`: code only), under the schema rule.

    preflight → lock → schema → [downgrade] → rollout → smoke → record

The schema step asks the database's revision (a short Job with the target's image). The code
may go back when every revision between the database's and the target's head is an expand;
otherwise the rollback stops with one line naming the blocking revision and the two ways
out: roll forward, or `--downgrade`, which runs `alembic downgrade <target head>` with the
newer image (the one that has the down scripts) under the migration lock first.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eq_deploy import history as hist
from eq_deploy import podspec
from eq_deploy.errors import DeployError, UsageError
from eq_deploy.hooks import HookRun, run_hook
from eq_deploy.interrupt import Interrupted, stopping_on_signals
from eq_deploy.pipeline import Runner, Status, Step
from eq_deploy.progress import Reporter
from eq_deploy.releases import (
    ALEMBIC_HEAD,
    DATABASE_REVISION,
    SchemaVerdict,
    merged_chain,
    missing_settings,
    schema_verdict,
)
from eq_deploy.render import load_manifest
from eq_deploy.session import (
    Outcome,
    Session,
    SmokeResult,
    Target,
    apply_note,
    record,
    refuse_while_migrating,
    release_of,
    run_job,
    smoke_deployment,
    tag_of,
    wait_rollout,
)

if TYPE_CHECKING:
    from eq_deploy.kube import Kube
    from eq_deploy.lock import DeployLock

Obj = dict[str, Any]
DB_CHECK_UNKNOWN_EXIT = 3


@dataclass
class RollbackOptions:
    to: str | None = None
    target: Target = field(default_factory=Target)
    timeout: float = 300
    force: bool = False
    smoke: bool = True
    smoke_url: str = ""
    force_unlock: bool = False
    keep_settings: bool = False
    downgrade: bool = False
    lock_wait: float = 0  # seconds to wait for a held lock
    message: str = ""  # recorded in history (--message)


@dataclass
class RollbackRun:
    """What one rollback has learned so far."""

    opts: RollbackOptions
    session: Session
    runner: Runner
    history: list[hist.Entry] = field(default_factory=list)
    live: Obj | None = None
    target: hist.Entry | None = None
    deployment: Obj = field(default_factory=dict)  # what the rollout applies
    db_revision: str = ""
    verdict: SchemaVerdict | None = None
    smoke: SmokeResult = field(default_factory=SmokeResult)
    lock: DeployLock | None = None
    entry: hist.Entry | None = None

    @property
    def kube(self) -> Kube:
        return self.session.kube

    @property
    def namespace(self) -> str:
        return self.session.namespace

    @property
    def tag(self) -> str:
        return self.target.tag if self.target else "?"


def rollback(opts: RollbackOptions, reporter: Reporter, *, kube: Kube | None = None) -> Outcome:
    if opts.downgrade and opts.keep_settings:
        raise UsageError("--downgrade and --keep-settings: choose one")
    session = Session(opts.target, reporter, check_required=False, kube=kube)
    run = RollbackRun(opts, session, Runner(reporter))
    with stopping_on_signals(run.runner.interruption):
        try:
            run.runner.run_all(rollback_steps(run))
        except DeployError as exc:
            after_failure(run, exc)
            if run.lock is not None:
                run.lock.release()
                run.lock = None
            hook = HookRun("rollback", run.tag, exc.exit_code, exc.message, revision=exc.revision)
            hook.message = opts.message
            run_hook(session, "on_failure", hook, time_left=run.runner.interruption.time_left())
            raise
        finally:
            if run.lock is not None:
                run.lock.release()
    target = run.target
    assert target is not None
    reporter.line(
        f"rolled back to {target.tag} ({target.digest or target.image}) in "
        f"{run.runner.elapsed:.1f}s"
        + (" (settings kept)" if opts.keep_settings else "")
        + (f" → {run.smoke.url}" if run.smoke.url else "")
    )
    outcome = Outcome(
        target.tag,
        target.image,
        target.digest,
        run.runner.elapsed,
        {name: run.runner.waited(name) for name in ("schema", "downgrade", "rollout", "smoke")},
        url=run.smoke.url,
        alembic_head=run.entry.alembic_head if run.entry else "",
        revision=run.entry.revision if run.entry else 0,
    )
    hook = HookRun("rollback", target.tag, 0, "", target.image, target.digest, outcome.revision)
    hook.url, hook.message = outcome.url, opts.message
    run_hook(session, "post_deploy", hook)
    return outcome


def after_failure(run: RollbackRun, exc: DeployError) -> None:
    """Record a failure or an interruption once the lock was taken. An interrupted rollback
    is not undone: what it restores is a release that served before, and the Deployment
    controller finishes a rollout that was applied."""
    if run.entry is None:
        if isinstance(exc, Interrupted):
            exc.message += "; stopped before the lock: nothing to undo"
        return
    if run.lock is not None and run.lock.lost:
        return  # another run holds the namespace now: no history write
    if isinstance(exc, Interrupted):
        run.entry.result = hist.INTERRUPTED
        if run.runner.current in ("rollout", "smoke"):
            exc.message += f"; the rollout to {run.tag} goes on in the cluster (inv status)"
        elif run.runner.current == "downgrade":
            exc.message += "; the downgrade Job runs to its end (inv status)"
        else:
            exc.message += "; the Deployment was not touched"
    run.entry.reason = exc.message
    record(run.session, run.entry, run.runner)
    exc.revision = run.entry.revision


def rollback_steps(run: RollbackRun) -> list[Step]:
    steps = [
        Step("preflight", lambda: preflight(run)),
        Step("lock", lambda: None, lambda status: take_lock(run, status)),
        Step("schema", lambda: None, lambda status: check_schema(run, status)),
    ]
    if run.opts.downgrade:
        steps.append(Step("downgrade", lambda: None, lambda status: downgrade(run, status)))
    steps.append(
        Step(
            "rollout",
            lambda: apply_note(run.session, [run.deployment]) + f" {run.tag}",
            lambda status: wait_rollout(run.session, run.opts.timeout, status, unchanged=False),
        )
    )
    if run.opts.smoke:
        steps.append(
            Step(
                "smoke",
                lambda: None,
                lambda status: smoke_deployment(
                    run.session,
                    run.deployment,
                    status,
                    explicit_url=run.opts.smoke_url,
                    deadline=run.opts.timeout,
                    into=run.smoke,
                ),
            )
        )
    steps.append(Step("record", lambda: record_success(run)))
    return steps


def restore_deployment_step(
    session: Session, previous: Obj, timeout: float, *, hurried: bool = False
) -> Step:
    """The automatic rollback of a failed deploy: re-apply the Deployment that served before.
    Its settings objects are immutable and still there, so its settings come back with it.
    `hurried` (an interrupted deploy, `timeout` = the time left before the second signal):
    reaching the deadline is no failure, the rollout goes on in the cluster."""
    from eq_deploy.errors import WaitTimeout
    from eq_deploy.kube import FIELD_MANAGER
    from eq_deploy.ownership import owned_fields

    # Only what the tool applied: re-applying the whole live object would make it the owner
    # of every defaulted field, and of spec.replicas under an HPA.
    body = owned_fields(previous, FIELD_MANAGER)
    if "template" not in body.get("spec", {}):
        # Applied by something else (the manual process's kubectl): nothing of ours to
        # restore, so restore what served, server bookkeeping removed.
        from eq_deploy.kube import strip_server_fields

        body = strip_server_fields(previous)

    def wait(status: Status) -> str:
        try:
            return wait_rollout(session, timeout, status, unchanged=False, diagnose=not hurried)
        except WaitTimeout as exc:
            if not hurried:
                raise
            state = exc.message.rsplit(": ", 1)[-1]
            return f"applied; still finishing when the time ran out ({state})"

    return Step(
        "rollback", lambda: apply_note(session, [body]) + f" back to {tag_of(previous)}", wait
    )


# --- the steps ------------------------------------------------------------------------------------
def preflight(run: RollbackRun) -> str:
    """Choose the target release and check its settings objects still exist. Changes nothing."""
    session = run.session
    session.reporter.line(session.where() + f" · kubernetes {session.connect()}")
    run.history = session.history()
    run.live = session.live_deployment()
    target = hist.rollback_target(run.history, release_of(run.live), run.opts.to)
    deployment = target.deployment_object()
    assert deployment is not None
    deployment["metadata"]["namespace"] = run.namespace
    if run.opts.keep_settings:
        if run.live is None:
            raise DeployError("--keep-settings: nothing is deployed whose settings could be kept")
        podspec.set_settings_refs(deployment, *podspec.settings_refs(run.live))
    gone = missing_settings(run.kube, run.namespace, deployment)
    if gone:
        raise DeployError(
            f"{', '.join(gone)} of {target.tag} (revision {target.revision}) no longer exist; "
            "deploy that tag again instead (inv deploy --tag "
            f"{target.tag}), or --keep-settings to roll back the code only"
        )
    run.target, run.deployment = target, deployment
    return f"target {target.tag} (revision {target.revision}, {target.image})"


def take_lock(run: RollbackRun, status: Status) -> str:
    from eq_deploy.lock import DeployLock, force_unlock, run_url, who

    target = run.target
    assert target is not None
    if run.opts.force_unlock:
        force_unlock(run.kube, run.namespace)
    lock = DeployLock.for_session(run.session, f"rollback to {target.tag}")
    lock.acquire(wait=run.opts.lock_wait, status=status)
    run.lock = lock
    run.runner.guards.append(lock.fence)
    refuse_while_migrating(run.session, f"a rollback to {target.tag}")
    live_entry = hist.live_entry(run.history, release_of(run.live))
    config, secret = podspec.settings_refs(run.deployment)
    same_settings = (config, secret) == (target.config_map, target.secret)
    run.entry = hist.Entry(
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
        environment=run.session.env.name,
        deployment=hist.pack_deployment(run.deployment),
        config_map=config,
        secret=secret,
        settings=target.settings
        if same_settings
        else dict(live_entry.settings if live_entry else {}),
        schema=target.schema,
        rolled_back_from=live_entry.revision if live_entry else 0,
        message=run.opts.message,
        run_url=run_url(),
    )
    return f"held by {lock.holder}"


def check_schema(run: RollbackRun, status: Status) -> str:
    """The database's revision, and whether the target's code may run on it."""
    target = run.target
    assert target is not None
    assert run.entry is not None
    job = _db_job(run, "db-check", target.image, ["python", "-m", "eq_backend", "db-check"])
    code, logs = run_job(run.session, job, status, timeout=120, what="schema check")
    found = DATABASE_REVISION.findall(logs)
    if code not in (0, DB_CHECK_UNKNOWN_EXIT) or not found:
        last = logs.splitlines()[-1] if logs else ""
        raise DeployError(
            f"schema check with {target.tag} failed (exit {code}): {last}", detail=logs
        )
    run.db_revision = "" if found[-1] == "none" else found[-1].rstrip(",")
    run.entry.alembic_before = run.db_revision
    run.entry.alembic_head = run.db_revision
    if code == 0:
        return f"database at {run.db_revision or 'none'}, known to {target.tag}"
    if target.alembic_head:
        chain = merged_chain(e.schema for e in run.history)
        verdict = schema_verdict(run.db_revision, target.alembic_head, chain)
    else:  # recorded before history kept Alembic heads
        verdict = SchemaVerdict(run.db_revision, "?", (), unknown=run.db_revision)
    run.verdict = verdict
    if verdict.ok:
        kinds = ", ".join(f"{rev} {kind}" for rev, kind in verdict.path)
        return f"database at {run.db_revision}: only expand revisions since {target.tag} ({kinds})"
    if run.opts.downgrade:
        return f"database at {run.db_revision}: downgrade to {target.alembic_head} next"
    if run.opts.force:
        run.session.reporter.line(f"warning: {verdict.explain(target.tag)}; going on (--force)")
        return "schema rule overridden (--force)"
    raise DeployError(verdict.explain(target.tag))


def downgrade(run: RollbackRun, status: Status) -> str:
    """`alembic downgrade <target head>` with the newest image whose scripts know the
    database's revision, under the migration lock (the migrate command takes it)."""
    target = run.target
    assert target is not None
    assert run.entry is not None
    if not target.alembic_head:
        raise DeployError(f"--downgrade: history does not record the Alembic head of {target.tag}")
    if run.db_revision == target.alembic_head:
        return f"database already at {target.alembic_head}"
    newer = next((e for e in run.history if run.db_revision in e.schema), None)
    if newer is None:
        raise DeployError(
            f"--downgrade: no release in history knows revision {run.db_revision} "
            "(its image has the down scripts)"
        )
    args = ["python", "-m", "eq_backend", "migrate", "--downgrade", target.alembic_head]
    job = _db_job(run, "downgrade", newer.image, args, timeout=run.opts.timeout)
    code, logs = run_job(run.session, job, status, timeout=run.opts.timeout, what="downgrade")
    heads = ALEMBIC_HEAD.findall(logs)
    if code != 0 or not heads or heads[-1] != target.alembic_head:
        last = logs.splitlines()[-1] if logs else ""
        raise DeployError(
            f"downgrade to {target.alembic_head} with {newer.tag} failed (exit {code}): {last}",
            detail=logs,
        )
    run.entry.alembic_head = target.alembic_head
    return f"database {run.db_revision} → {target.alembic_head} (with {newer.tag})"


def record_success(run: RollbackRun) -> str:
    from eq_deploy.deploy import collect_settings_garbage

    assert run.entry is not None
    run.entry.result = hist.SUCCEEDED
    return record(run.session, run.entry, run.runner) + collect_settings_garbage(
        run.session, run.deployment
    )


def _db_job(
    run: RollbackRun, purpose: str, image: str, args: list[str], timeout: float = 120
) -> Obj:
    """A short Job running `args` with `image` and the settings of the release being
    restored (its DATABASE_URL)."""
    job = load_manifest("Job")
    name = f"eq-backend-{purpose}-{secrets.token_hex(3)}"
    job["metadata"].update(name=name, namespace=run.namespace)
    job["metadata"]["labels"]["app.kubernetes.io/component"] = purpose
    job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = purpose
    job["spec"]["ttlSecondsAfterFinished"] = 600
    job["spec"]["activeDeadlineSeconds"] = int(timeout)
    podspec.main_container(job).update(name=purpose, image=image, args=args)
    podspec.set_settings_refs(job, *podspec.settings_refs(run.deployment))
    return job
