"""`inv deploy` (and its dry run, `inv diff`) as a plan: a typed run object that carries what
earlier steps learned, and an explicit list of steps the runner counts and reports.

    preflight → namespace → lock → config → migrate → rollout → smoke → record

A release is image digest + settings + schema: `config` applies the content-addressed
ConfigMap and Secret, `migrate` records the Alembic revisions before and after, and a failed
rollout goes back to the previous Deployment (its settings objects untouched) only when every
revision it migrated over is an expand; otherwise it stops and says so (exit 3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eq_deploy import history as hist
from eq_deploy import podspec
from eq_deploy.errors import DeployError, NeedsHuman
from eq_deploy.hooks import HookRun, run_hook
from eq_deploy.interrupt import Interrupted, stopping_on_signals
from eq_deploy.pipeline import Runner, Status, Step
from eq_deploy.progress import Reporter
from eq_deploy.releases import (
    MigrationReport,
    SchemaVerdict,
    collect_garbage,
    fingerprint_salt,
    merged_chain,
    parse_migration_log,
    referenced_settings,
    schema_verdict,
)
from eq_deploy.render import DEPLOYMENT_NAME, render_manifests, settings_fingerprints
from eq_deploy.session import (
    Outcome,
    Session,
    SmokeResult,
    Target,
    apply_note,
    record,
    refuse_while_migrating,
    release_of,
    resolve_image,
    smoke_deployment,
    tag_of,
    wait_gone,
    wait_rollout,
)
from eq_deploy.settings import check_tag

if TYPE_CHECKING:
    from eq_deploy.kube import Kube
    from eq_deploy.lock import DeployLock

Obj = dict[str, Any]
ALEMBIC_ANNOTATION = "eq.deploy/alembic-head"
ALEMBIC_BEFORE_ANNOTATION = "eq.deploy/alembic-before"  # for a person reading the Job
ALEMBIC_CHAIN_ANNOTATION = "eq.deploy/alembic-chain"

__all__ = [
    "DEPLOYMENT_NAME",
    "DeployOptions",
    "DeployRun",
    "Outcome",
    "Target",
    "deploy",
    "diff",
    "keep_runtime_if_unchanged",
]


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
    lock_wait: float = 0  # seconds to wait for a held lock
    message: str = ""  # recorded in history (--message)
    prune: bool = True  # delete what the render no longer has, after a successful rollout


@dataclass
class DeployRun:
    """What one deploy has learned so far; each step reads and fills it."""

    opts: DeployOptions
    session: Session
    runner: Runner
    tag: str
    image: str = ""
    digest: str = ""
    objects: list[Obj] = field(default_factory=list)
    previous: Obj | None = None  # the Deployment that served before this deploy
    history: list[hist.Entry] = field(default_factory=list)
    unchanged: bool = False  # same image and settings as what serves: no new rollout
    migration: MigrationReport | None = None
    migrate_skipped: bool = False
    migrate_adopted: bool = False  # waited for a Job an interrupted deploy left running
    rollout_started: bool = False
    smoke: SmokeResult = field(default_factory=SmokeResult)
    lock: DeployLock | None = None
    entry: hist.Entry | None = None  # created once the lock is held
    changes: list[str] = field(default_factory=list)  # dry run

    @property
    def kube(self) -> Kube:
        return self.session.kube

    @property
    def namespace(self) -> str:
        return self.session.namespace

    def obj(self, kind: str) -> Obj:
        return next(o for o in self.objects if o["kind"] == kind)


def deploy(
    opts: DeployOptions,
    reporter: Reporter,
    *,
    kube: Kube | None = None,
    changes: list[str] | None = None,
) -> Outcome:
    """Run the deploy plan (or the dry-run plan, whose diff blocks go into `changes`); raise
    DeployError on failure, after the automatic rollback and the history record."""
    tag = check_tag(opts.tag, allow_tag=opts.allow_tag)
    run = DeployRun(opts, Session(opts.target, reporter, kube=kube), Runner(reporter), tag)
    if opts.dry_run:
        run.runner.run_all(dry_run_steps(run))
        if changes is not None:
            changes.extend(run.changes)
        return Outcome(
            tag,
            run.image,
            run.digest,
            run.runner.elapsed,
            {},
            changed=any(not c.startswith("=") for c in run.changes),
            note="dry run: nothing changed",
        )
    # The handlers stay until the lock is released and the hook ran: a second signal during
    # the cleanup exits at once.
    with stopping_on_signals(run.runner.interruption):
        try:
            try:
                run.runner.run_all(deploy_steps(run))
            except DeployError as exc:
                after_failure(run, exc)
                raise
            finally:
                if run.lock is not None:
                    run.lock.release()
        except DeployError as final:  # NeedsHuman may have replaced the first error
            hook = HookRun("deploy", tag, final.exit_code, final.message, run.image, run.digest)
            hook.revision, hook.message = final.revision, opts.message
            run_hook(
                run.session,
                "on_failure",
                hook,
                time_left=run.runner.interruption.time_left(),
            )
            raise
    outcome = Outcome(
        tag,
        run.image,
        run.digest,
        run.runner.elapsed,
        {name: run.runner.waited(name) for name in ("migrate", "rollout", "smoke")},
        url=run.smoke.url,
        changed=not run.unchanged,
        alembic_head=run.migration.head if run.migration else "",
        revision=run.entry.revision if run.entry else 0,
    )
    reporter.line(
        f"deployed {tag} ({run.digest or 'no digest'}) to {run.namespace} in "
        f"{outcome.seconds:.1f}s"
        + (f" → {outcome.url}" if outcome.url else "")
        + ("" if outcome.changed else " (pods unchanged)")
    )
    hook = HookRun("deploy", tag, 0, "", run.image, run.digest, outcome.revision, outcome.url)
    hook.message = opts.message
    run_hook(run.session, "post_deploy", hook)
    return outcome


def diff(
    tag: str,
    target: Target,
    reporter: Reporter,
    *,
    allow_tag: bool = False,
    kube: Kube | None = None,
) -> list[str]:
    """Print what `deploy --tag` would change; return one block per object, each starting
    with `+` (new), `~` (changed), `=` (same) or `-` (would be pruned)."""
    changes: list[str] = []
    deploy(
        DeployOptions(tag=tag, target=target, dry_run=True, allow_tag=allow_tag),
        reporter,
        kube=kube,
        changes=changes,
    )
    return changes


# --- the plans ------------------------------------------------------------------------------------
def deploy_steps(run: DeployRun) -> list[Step]:
    steps = [
        Step("preflight", lambda: preflight(run)),
        Step("namespace", lambda: apply_note(run.session, [run.obj("Namespace")])),
        Step("lock", lambda: None, lambda status: take_lock(run, status)),
        Step("config", lambda: apply_settings(run)),
        Step("migrate", lambda: start_migration(run), lambda status: finish_migration(run, status)),
        Step("rollout", lambda: start_rollout(run), lambda status: finish_rollout(run, status)),
    ]
    if run.opts.smoke:
        steps.append(Step("smoke", lambda: None, lambda status: smoke(run, status)))
    steps.append(Step("record", lambda: record_success(run)))
    return steps


def dry_run_steps(run: DeployRun) -> list[Step]:
    from eq_deploy.inspect import diff_objects

    def dry_run() -> str:
        run.changes = diff_objects(run.session, run.objects)
        changed = sum(1 for c in run.changes if not c.startswith("="))
        return f"{changed} of {len(run.objects)} object(s) would change"

    def show() -> str:
        for change in run.changes:
            run.session.reporter.detail(change, indent="  ")
        return ""

    return [Step("preflight", lambda: preflight(run)), Step("dry-run", dry_run), Step("diff", show)]


# --- the steps ------------------------------------------------------------------------------------
def preflight(run: DeployRun) -> str:
    """Reach the cluster, resolve the image's digest, render. Changes nothing."""
    from eq_deploy.lock import who

    session = run.session
    session.reporter.line(session.where() + f" · kubernetes {session.connect()}")
    run.image, run.digest = resolve_image(session, run.tag)
    runtime = {"DEPLOYED_AT": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "DEPLOY_BY": who()}
    run.objects = render_manifests(
        session.env.name,
        run.tag,
        image=run.image,
        values=session.values(runtime),
        redact_secrets=False,
    )
    run.unchanged = keep_runtime_if_unchanged(run.objects, session.live_deployment())
    return f"image {run.image}"


def take_lock(run: DeployRun, status: Status) -> str:
    """Take the Lease (waiting up to --lock-wait), fence every later step with it, then read
    what serves and the history under it."""
    from eq_deploy.lock import DeployLock, force_unlock, run_url, who

    note = ""
    if run.opts.force_unlock:
        holder = force_unlock(run.kube, run.namespace)
        note = f"removed lock of {holder}; " if holder else ""
    lock = DeployLock.for_session(run.session, f"deploy {run.tag}")
    lock.acquire(wait=run.opts.lock_wait, status=status)
    run.lock = lock
    run.runner.guards.append(lock.fence)
    if lock.took_over:
        note += f"took over stale lock of {lock.took_over}; "
    refuse_while_migrating(run.session, f"deploying {run.tag}", own_job=_job_name(run))
    run.previous = run.session.live_deployment()
    run.history = run.session.history()
    run.unchanged = keep_runtime_if_unchanged(run.objects, run.previous)
    run.entry = hist.Entry(
        revision=0,
        action="deploy",
        tag=run.tag,
        image=run.image,
        digest=run.digest,
        git_sha=podspec.env_literals(run.obj("Deployment")).get("DEPLOY_SHA", ""),
        at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        by=who(),
        result=hist.FAILED,
        environment=run.session.env.name,
        message=run.opts.message,
        run_url=run_url(),
    )
    return note + f"held by {lock.holder}"


def apply_settings(run: DeployRun) -> str:
    """The release's ConfigMap and Secret (content-addressed, immutable: applying one that
    exists changes nothing), and their per-key fingerprints for history."""
    assert run.entry is not None
    config, secret = run.obj("ConfigMap"), run.obj("Secret")
    run.entry.config_map = config["metadata"]["name"]
    run.entry.secret = secret["metadata"]["name"]
    run.entry.settings = settings_fingerprints(
        [config, secret], fingerprint_salt(run.kube, run.namespace)
    )
    return apply_note(run.session, [config, secret])


def start_migration(run: DeployRun) -> str:
    """The tag's migration Job: wait for a run still going (an interrupted deploy left it),
    reuse a completed run of this build, else (re)create it. A running Job is never deleted:
    that could stop `alembic upgrade` halfway."""
    kube, ns, job = run.kube, run.namespace, run.obj("Job")
    name = job["metadata"]["name"]
    job["spec"]["activeDeadlineSeconds"] = int(run.opts.timeout)
    live = kube.get("Job", name, ns)
    if live is not None and not podspec.job_complete(live) and not podspec.job_failed(live):
        run.migrate_adopted = True
        return f"Job/{name} still running from an earlier deploy: waiting for it"
    if live is not None:
        annotations = live["metadata"].get("annotations") or {}
        head = annotations.get(ALEMBIC_ANNOTATION, "")
        if podspec.job_complete(live) and podspec.image(live) == run.image and head:
            # Nothing runs now: the database stays at the head that Job reached.
            run.migration = MigrationReport(
                head, head, _chain(annotations.get(ALEMBIC_CHAIN_ANNOTATION, ""))
            )
            run.migrate_skipped = True
            return "already ran for this build"
        # A failed or different run of this tag: its template is immutable, so replace it.
        kube.delete("Job", name, ns, propagation="Foreground")
        wait_gone(kube, "Job", name, ns, timeout=60)
    kube.apply(job)
    return f"Job/{name}"


def finish_migration(run: DeployRun, status: Status) -> str:
    from eq_deploy.waits import job_logs, wait_for_job

    assert run.entry is not None
    kube, ns, name = run.kube, run.namespace, run.obj("Job")["metadata"]["name"]
    if not run.migrate_skipped:
        wait_for_job(kube, ns, name, run.opts.timeout, status)
        logs = job_logs(kube, ns, name)
        report = parse_migration_log(logs)
        if report is None:
            raise DeployError(
                f"migration Job {name} completed without reporting 'alembic head: <rev>'; "
                "the Deployment was not touched",
                detail="migration log:\n" + (logs.strip() or "(empty)"),
            )
        run.migration = report
        annotations = {
            ALEMBIC_ANNOTATION: report.head,
            ALEMBIC_BEFORE_ANNOTATION: report.before,
            ALEMBIC_CHAIN_ANNOTATION: json.dumps(report.chain or {}, separators=(",", ":")),
        }
        kube.annotate("Job", name, ns, annotations)
        for line in logs.strip().splitlines()[-5:]:
            if not line.startswith("alembic chain:"):
                run.session.reporter.line(f"    migrate | {line}")
    assert run.migration is not None
    run.entry.alembic_head = run.migration.head
    run.entry.alembic_before = run.migration.before
    run.entry.schema = dict(run.migration.chain or {})
    if run.migrate_skipped:
        return f"alembic head {run.migration.head} (already ran for this build)"
    if run.migrate_adopted:
        return f"alembic head {run.migration.head} (waited for the run an earlier deploy started)"
    return f"alembic head {run.migration.head}"


def start_rollout(run: DeployRun) -> str:
    assert run.entry is not None
    run.entry.deployment = hist.pack_deployment(run.obj("Deployment"))
    run.rollout_started = True
    rest = [o for o in run.objects if o["kind"] not in {"Namespace", "ConfigMap", "Secret", "Job"}]
    return apply_note(run.session, rest)


def finish_rollout(run: DeployRun, status: Status) -> str:
    return wait_rollout(run.session, run.opts.timeout, status, unchanged=run.unchanged)


def smoke(run: DeployRun, status: Status) -> str:
    return smoke_deployment(
        run.session,
        run.obj("Deployment"),
        status,
        explicit_url=run.opts.smoke_url,
        deadline=run.opts.timeout,
        into=run.smoke,
    )


def record_success(run: DeployRun) -> str:
    assert run.entry is not None
    run.entry.result = hist.SUCCEEDED
    note = record(run.session, run.entry, run.runner)
    if run.opts.prune:
        note += prune_stale(run)
    return note + collect_settings_garbage(run.session, run.obj("Deployment"))


def prune_stale(run: DeployRun) -> str:
    """After a successful rollout: delete what the render no longer has (a failure to is a
    warning: the release serves)."""
    from eq_deploy.prune import prune

    try:
        deleted = prune(run.kube, run.namespace, run.objects)
    except DeployError as exc:
        run.session.reporter.line(f"warning: not pruned: {exc.message}")
        return ""
    for label in deleted:
        run.session.reporter.line(f"  - {label} (deleted)")
    return f"; pruned {len(deleted)} object(s)" if deleted else ""


def collect_settings_garbage(session: Session, live: Obj) -> str:
    """Delete the settings objects no retained history entry (nor `live`) refers to."""
    try:
        keep = referenced_settings(session.history(), live)
        deleted = collect_garbage(session.kube, session.namespace, keep)
    except DeployError as exc:
        session.reporter.line(f"warning: old settings objects not collected: {exc.message}")
        return ""
    return f"; collected {len(deleted)} unused settings object(s)" if deleted else ""


# --- failure --------------------------------------------------------------------------------------
def after_failure(run: DeployRun, exc: DeployError) -> None:
    """Once the lock was taken, a failure (or an interruption) is recorded; once the rollout
    started, it is rolled back to the previous Deployment when the schema allows (else
    NeedsHuman is raised; an interruption keeps its own exit code and says so)."""
    entry = run.entry
    interrupted = isinstance(exc, Interrupted)
    if entry is None:  # preflight or lock: nothing was changed, nothing to record
        if interrupted:
            exc.message += "; stopped before the lock: nothing to undo"
        return
    if run.lock is not None and run.lock.lost:
        # Another run holds the namespace now: no rollback, and no history write either.
        return
    if interrupted:
        entry.result = hist.INTERRUPTED
        if run.runner.current == "migrate" and run.migration is None:
            # The Job runs on and holds the namespace until it ends (refuse_while_migrating).
            exc.message += (
                f"; migration Job {_job_name(run)} left to finish (a deploy of {run.tag} "
                "waits for it)"
            )
        if not run.rollout_started:
            exc.message += "; the Deployment was not touched"
        entry.reason = exc.message
    else:
        migrating = run.runner.current == "migrate"
        entry.reason = f"migration: {exc.message}" if migrating else exc.message
    blocked: NeedsHuman | None = None
    if run.rollout_started and run.opts.rollback_on_failure and not run.unchanged:
        previous = run.previous
        if previous is None:
            exc.message += " (no previous Deployment to roll back to)"
        else:
            blocked = _auto_rollback(run, previous, exc)
    if run.lock is not None and run.lock.lost:  # lost while rolling back: write nothing more
        return
    record(run.session, entry, run.runner)
    exc.revision = entry.revision
    if blocked is not None:
        blocked.revision = entry.revision
        if interrupted:
            exc.message = blocked.message
            return
        raise blocked from None


def _auto_rollback(run: DeployRun, previous: Obj, exc: DeployError) -> NeedsHuman | None:
    from eq_deploy.rollback import restore_deployment_step

    assert run.entry is not None
    tag = tag_of(previous)
    verdict = auto_rollback_verdict(run, previous)
    if not verdict.ok:
        why = verdict.explain(tag)
        run.entry.reason += f"; automatic rollback to {tag} stopped: {why}"
        return NeedsHuman(f"{exc.message}; automatic rollback to {tag} stopped: {why}")
    interruption = run.runner.interruption
    hurried = interruption.requested
    timeout = max(0.0, min(run.opts.timeout, interruption.time_left()))
    try:
        run.runner.run_all(
            [restore_deployment_step(run.session, previous, timeout, hurried=hurried)]
        )
    except DeployError as rollback_exc:
        run.entry.reason += f"; rollback to {tag} failed too"
        exc.message += f" (rollback to {tag} failed too: {rollback_exc.message})"
    else:
        note = run.runner.timings[-1].note
        # A hurried rollback may still be finishing: say so rather than claim it is done.
        finishing = f"; {note}" if note.startswith("applied; still") else ""
        exc.rolled_back_to = tag
        run.entry.reason += f"; rolled back to {tag}{finishing}"
        exc.message = f"{exc.message} (rolled back to {tag}{finishing})"
    return None


def auto_rollback_verdict(run: DeployRun, previous: Obj) -> SchemaVerdict:
    """May the previous Deployment's code run on the schema this deploy migrated to?"""
    report = run.migration
    if report is None:
        return SchemaVerdict("", "", ())
    live = hist.live_entry(run.history, release_of(previous))
    target = (live.alembic_head if live is not None else "") or report.before
    chains = [report.chain or {}, *(e.schema for e in run.history)]
    return schema_verdict(report.head, target, merged_chain(chains))


# --- helpers --------------------------------------------------------------------------------------
def keep_runtime_if_unchanged(objects: list[Obj], live: Obj | None) -> bool:
    """When the live Deployment already runs the same image with the same settings objects,
    keep its DEPLOYED_AT/DEPLOY_BY so re-deploying the same tag changes nothing (no new
    rollout). Returns True when the pod template is unchanged."""
    if live is None:
        return False
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    if release_of(deployment) != release_of(live):
        return False
    live_env = podspec.env_literals(live)
    for item in podspec.main_container(deployment)["env"]:
        if item["name"] in ("DEPLOYED_AT", "DEPLOY_BY") and item["name"] in live_env:
            item["value"] = live_env[item["name"]]
    return True


def _job_name(run: DeployRun) -> str:
    return str(run.obj("Job")["metadata"]["name"])


def _chain(text: str) -> dict[str, list[str]] | None:
    if not text:
        return None
    report = parse_migration_log(f"alembic head: x\nalembic chain: {text}")
    return report.chain if report else None
