"""The commands that change nothing: what deploying would change (`diff_objects`, for
`inv diff` and `--dry-run`), `inv history` (with `--changes`: which settings keys differ
between two releases, values redacted), `inv status` and `inv smoke`."""

from __future__ import annotations

import copy
import difflib
import json
from typing import TYPE_CHECKING, Any

import yaml

from eq_deploy import history as hist
from eq_deploy import podspec
from eq_deploy.errors import DeployError
from eq_deploy.progress import Reporter
from eq_deploy.render import DEPLOYMENT_NAME, redact
from eq_deploy.session import Session, Target, deploy_sha, refuse_while_migrating, tag_of

if TYPE_CHECKING:
    from eq_deploy.kube import Kube

Obj = dict[str, Any]


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
    if namespace_exists:
        from eq_deploy.prune import stale_objects

        out += [
            f"- {label} (would delete)" for label in stale_objects(kube, session.namespace, objects)
        ]
    return out


def _job_change(label: str, job: Obj, live: Obj) -> str:
    image, live_image = podspec.image(job), podspec.image(live)
    if podspec.job_complete(live) and image == live_image:
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


def show_history(
    target: Target,
    reporter: Reporter,
    *,
    as_json: bool = False,
    changes: str = "",
    kube: Kube | None = None,
) -> list[hist.Entry]:
    """The history table; with `changes` ("OLD..NEW", revisions or tags), which settings keys
    differ between those two releases (values never shown)."""
    session = Session(target, reporter, check_required=False, kube=kube)
    entries = hist.read_history(session.kube, session.namespace)
    if changes:
        old, sep, new = changes.partition("..")
        if not sep or not old or not new:
            from eq_deploy.errors import UsageError

            raise UsageError(f"--changes {changes!r}: want OLD..NEW (revisions or tags)")
        reporter.line(hist.format_changes(entries, old, new))
        return entries
    if as_json:
        reporter.line(json.dumps([e.summary() for e in entries], indent=2))
    else:
        reporter.line(f"history of {session.namespace} ({session.kube.context}):")
        reporter.line(hist.format_history(entries))
    return entries


def show_status(target: Target, reporter: Reporter, *, kube: Kube | None = None) -> dict[str, Any]:
    from eq_deploy.lock import LOCK_NAME, lease_expiry
    from eq_deploy.waits import fatal_container_state, rollout_state

    session = Session(target, reporter, check_required=False, kube=kube)
    kube, ns = session.kube, session.namespace
    reporter.line(session.where() + f" · kubernetes {session.connect()}")
    deployment = kube.get("Deployment", DEPLOYMENT_NAME, ns)
    if deployment is None:
        reporter.line(f"Deployment {DEPLOYMENT_NAME}: not deployed in {ns}")
        return {"deployed": False, "namespace": ns}
    container = podspec.main_container(deployment)
    env = podspec.env_literals(deployment)
    try:
        done, text = rollout_state(deployment)
    except DeployError as exc:
        done, text = False, exc.message
    reporter.line(
        f"Deployment {DEPLOYMENT_NAME}: {tag_of(deployment)} · "
        f"{'ready' if done else 'NOT ready'}: {text}"
    )
    reporter.line(f"  image {container['image']}")
    config, secret = podspec.settings_refs(deployment)
    reporter.line(f"  settings ConfigMap/{config}, Secret/{secret}")
    reporter.line(
        f"  deployed {env.get('DEPLOYED_AT', '?')} by {env.get('DEPLOY_BY', '?')} "
        f"(sha {env.get('DEPLOY_SHA', '?')})"
    )
    selector = ",".join(
        f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items()
    )
    pods = []
    for pod in kube.items("Pod", ns, labels=selector):
        statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
        restarts = sum(cs.get("restartCount", 0) for cs in statuses)
        problem = fatal_container_state(pod) or ""
        pods.append(
            {
                "name": pod["metadata"]["name"],
                "phase": (pod.get("status") or {}).get("phase"),
                "restarts": restarts,
                "problem": problem,
            }
        )
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
    return {
        "deployed": True,
        "namespace": ns,
        "tag": tag_of(deployment),
        "ready": done,
        "state": text,
        "image": container["image"],
        "config_map": config,
        "secret": secret,
        "deployed_at": env.get("DEPLOYED_AT", ""),
        "deployed_by": env.get("DEPLOY_BY", ""),
        "pods": pods,
        "last": entries[0].summary() if entries else None,
        "lock": (lease.get("spec") or {}).get("holderIdentity") if lease is not None else None,
    }


def run_smoke(target: Target, reporter: Reporter, *, url: str = "", deadline: float = 60) -> str:
    from eq_deploy.access import service_url
    from eq_deploy.smoke import smoke

    session = Session(target, reporter, check_required=False)
    deployment = (
        session.kube.get("Deployment", DEPLOYMENT_NAME, session.namespace) if not url else None
    )
    expect = deploy_sha(deployment) if deployment else ""
    with service_url(
        session.kube, session.namespace, explicit=url, env_url=session.env.smoke_url
    ) as base:
        note = smoke(base, expect_sha=expect, deadline=deadline, status=reporter.status)
    reporter.line(f"smoke ok: {note}")
    return note


def lock_command(
    target: Target,
    reporter: Reporter,
    action: str,
    *,
    message: str = "",
    duration: str = "24h",
    force: bool = False,
    kube: Kube | None = None,
) -> dict[str, Any]:
    """`inv lock acquire | release | status`."""
    from eq_deploy.errors import UsageError
    from eq_deploy.lock import acquire_by_hand, lock_state, parse_duration, release_by_hand

    if action not in ("acquire", "release", "status"):
        raise UsageError(f"inv lock {action!r}: want acquire, release or status")
    seconds = parse_duration(duration, "--duration") if action == "acquire" else 0
    session = Session(target, reporter, check_required=False, kube=kube)
    kube, ns = session.kube, session.namespace
    if action != "status":
        session.env.check_cluster(kube.context, kube.server)
    if action == "acquire":
        held = acquire_by_hand(kube, ns, message, seconds)
        reporter.line(f"deploy lock of {ns} held by {held.holder} for {duration}")
    elif action == "release":
        holder = release_by_hand(kube, ns, force=force)
        reporter.line(f"released the deploy lock of {ns} ({holder})" if holder else "not held")
    state = lock_state(kube, ns)
    if action == "status":
        if not state["held"]:
            reporter.line(f"deploy lock of {ns}: free" + (" (stale)" if "holder" in state else ""))
        else:
            reporter.line(
                f"deploy lock of {ns}: held by {state['holder']} since {state['acquired']}, "
                f"stale at {state['stale_at']}"
            )
    return state


def destroy(
    target: Target, reporter: Reporter, *, yes: bool, kube: Kube | None = None
) -> list[str]:
    """`inv destroy`: under the lock, delete every object the tool made in the namespace
    (the namespace itself stays: it may hold more than this app). Without `yes`, only say
    what would go."""
    from eq_deploy.errors import UsageError
    from eq_deploy.lock import DeployLock
    from eq_deploy.prune import everything

    session = Session(target, reporter, check_required=False, kube=kube)
    reporter.line(session.where() + f" · kubernetes {session.connect()}")
    kube, ns = session.kube, session.namespace
    found = everything(kube, ns)
    if not yes:
        raise UsageError(
            f"inv destroy would delete {len(found)} object(s) in {ns}"
            + (f" ({', '.join(found)})" if found else "")
            + "; pass --yes to delete them"
        )
    with DeployLock.for_session(session, "destroy"):
        refuse_while_migrating(session, "inv destroy")  # never kill alembic halfway
        for label in everything(kube, ns):
            kind, name = label.split("/", 1)
            kube.delete(kind, name, ns, propagation="Background")
            reporter.line(f"- {label} (deleted)")
    reporter.line(f"destroyed the app in {ns}")
    return found


CHANGE_OPS = {"+": "create", "~": "change", "=": "same", "-": "delete"}


def change_summary(tag: str, changes: list[str]) -> dict[str, Any]:
    """`inv diff --json`: {"tag", "changed", "objects": [{"object", "op", "diff"}]} with op
    create | change | same | delete (pruned); Secret values are redacted as in the text."""
    objects = []
    for block in changes:
        head, _, body = block.partition("\n")
        op, _, rest = head.partition(" ")
        objects.append(
            {"object": rest.split(" ", 1)[0], "op": CHANGE_OPS.get(op, op), "diff": body}
        )
    return {
        "tag": tag,
        "changed": any(o["op"] != "same" for o in objects),
        "objects": objects,
    }


API_PODS = "app.kubernetes.io/name=eq-backend,app.kubernetes.io/component=api"


def logs_command(session: Session, *, follow: bool, tail: int, migrations: bool) -> list[str]:
    """The kubectl command for the app's logs: every API pod (or the migration Jobs' pods),
    each line prefixed with its pod, in the session's context and namespace."""
    selector = (
        "app.kubernetes.io/name=eq-backend,app.kubernetes.io/component=migrate"
        if migrations
        else API_PODS
    )
    argv = [
        "kubectl",
        "--context",
        session.kube.context,
        "--namespace",
        session.namespace,
        "logs",
        "--selector",
        selector,
        "--prefix",
        "--all-containers",
        f"--tail={tail}",
        "--max-log-requests=20",
    ]
    return [*argv, "--follow"] if follow else argv


def show_logs(
    target: Target, reporter: Reporter, *, follow: bool, tail: int, migrations: bool
) -> int:
    """`inv logs [-f]`: kubectl's own streaming, with Ctrl-C passed on; its exit code."""
    import shutil

    from eq_deploy.foreground import run_forwarding_signals

    if shutil.which("kubectl") is None:
        raise DeployError("inv logs needs kubectl on PATH")
    session = Session(target, reporter, check_required=False)
    return run_forwarding_signals(
        logs_command(session, follow=follow, tail=tail, migrations=migrations)
    )
