"""The deploy tool's invoke tasks. They only parse flags and call the library (eq_deploy.deploy,
.rollback, .inspect); a DeployError becomes one `error: ...` line and exit status 1 (2 for bad
input, 3 when a failed deploy could not be rolled back automatically: a person must decide)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task as invoke_task

F = TypeVar("F", bound=Callable[..., Any])


def task(**kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """invoke's @task without generated short flags (long flags read better in scripts)."""
    return functools.partial(invoke_task, auto_shortflags=False, **kwargs)


WHERE_HELP = {
    "env": "environment: local (NodePort 30080), kind, or cloud (LoadBalancer, HPA, PDB) [local]",
    "context": "kubeconfig context [KUBE_CONTEXT, else the current context]",
    "namespace": "namespace [K8S_NAMESPACE, else the environment's]",
    "env_file": "settings file [.env]",
}


def reports_errors(func: F) -> F:
    """Turn a DeployError into `error: <message>` (+ its detail lines) and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from eq_deploy.errors import DeployError

        try:
            return func(*args, **kwargs)
        except DeployError as exc:
            if exc.detail:
                print(exc.detail, file=sys.stderr)
            print(f"error: {exc.message}", file=sys.stderr)
            raise Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            raise Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


def _target(env: str, context: str | None, namespace: str | None, env_file: str | None) -> Any:
    from eq_deploy.session import Target

    return Target(
        environment=env,
        context=context or None,
        namespace=namespace or None,
        env_file=Path(env_file) if env_file else None,
    )


def _reporter(*, to_stderr: bool = False) -> Any:
    """The progress reporter; with --json it writes to stderr, leaving stdout to the JSON."""
    from eq_deploy.progress import Reporter

    return Reporter(sys.stderr if to_stderr else None)


JSON_HELP = "print the result as one JSON object on stdout (progress goes to stderr)"
MESSAGE_HELP = "why, recorded in history (and given to hooks)"


@task(
    help={
        "tag": "image tag [sha-<short HEAD>]",
        "platform": "target platforms, e.g. linux/amd64,linux/arm64 [the builder's]",
        "push": "push to the registry (with a registry build cache)",
        "load": "load into the local docker image store (one platform)",
        "image": "image repository [IMAGE, else the environment's]",
        "env": "environment whose image repository is the default [local]",
        "allow_dirty": "build even with uncommitted changes",
        "allow_tag": "accept a tag that is not sha-<hex>",
        "build_arg": "NAME=VALUE passed to the build, e.g. BASE_IMAGE=... (repeatable)",
        "builder": "buildx builder to use [the current one]",
        "no_cache": "no registry build cache",
    },
    iterable=["build_arg"],
)
@reports_errors
def build(
    c: Context,
    tag: str = "",
    platform: str = "",
    push: bool = False,
    load: bool = False,
    image: str = "",
    env: str = "local",
    allow_dirty: bool = False,
    allow_tag: bool = False,
    build_arg: list[str] | None = None,
    builder: str = "",
    no_cache: bool = False,
) -> None:
    """Build the backend image with docker buildx (tag sha-<commit>, OCI labels, digest)."""
    from eq_deploy.build import BuildOptions
    from eq_deploy.build import build as run_build
    from eq_deploy.environments import load_environment
    from eq_deploy.settings import load_settings

    environment = load_environment(env)
    repository = image or load_settings().get("IMAGE") or environment.image_repository
    from eq_deploy.images import parse_image

    repo = parse_image(repository)
    result = run_build(
        BuildOptions(
            repository=repo.repository,
            tag=tag or None,
            platforms=platform,
            push=push,
            load=load,
            allow_dirty=allow_dirty,
            allow_tag=allow_tag,
            build_args=list(build_arg or []),
            builder=builder,
            cache=not no_cache,
            base_images=environment.base_images,
        )
    )
    print(f"built {result.image}" + (f"@{result.digest}" if result.digest else ""))
    if result.digest:
        print(f"digest {result.digest}")


@task(
    help={
        "tag": "image tag to render (sha-<commit>)",
        **{k: v for k, v in WHERE_HELP.items() if k != "context"},
        "out": "write one YAML file per object into DIR instead of printing",
        "image": "full image reference to use instead of <repository>:<tag>",
        "allow_tag": "accept a tag that is not sha-<hex>",
    }
)
@reports_errors
def render(
    c: Context,
    tag: str,
    env: str = "local",
    out: str = "",
    image: str = "",
    env_file: str = "",
    namespace: str = "",
    allow_tag: bool = False,
) -> None:
    """Print the exact objects deploy would apply, as YAML, secrets redacted."""
    from eq_deploy.render import render_manifests, to_yaml
    from eq_deploy.settings import check_tag, load_settings

    check_tag(tag, allow_tag=allow_tag)
    path = Path(env_file) if env_file else None
    values = dict(load_settings(path).values) if (path or Path(".env").exists()) else None
    if namespace:
        from eq_deploy.settings import sample_values

        values = {**(values if values is not None else sample_values()), "K8S_NAMESPACE": namespace}
    objects = render_manifests(env, tag, image=image or None, values=values)
    if not out:
        sys.stdout.write(to_yaml(objects))
        return
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    for index, obj in enumerate(objects, 1):
        name = f"{index:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        (target / name).write_text(to_yaml([obj]))
    print(f"wrote {len(objects)} objects to {target}/")


@task(
    help={
        "tag": "image tag to deploy (sha-<commit>)",
        **WHERE_HELP,
        "timeout": "seconds to wait for the migration and for the rollout [300]",
        "dry_run": "server-side dry run: show the diff, change nothing",
        "smoke": "run the smoke checks after the rollout (--no-smoke skips them)",
        "smoke_url": "base URL for smoke checks [the Service's, else a port-forward]",
        "rollback_on_failure": "roll a failed rollout back (--no-rollback-on-failure: leave it)",
        "allow_tag": "accept a tag that is not sha-<hex>",
        "force_unlock": "remove another deploy's lock first (when that deploy is gone)",
        "lock_wait": "wait this long for a held lock (90s, 5m, 1h) [0: fail at once, exit 4]",
        "prune": "delete what the render no longer has, after a successful rollout "
        "(--no-prune keeps it)",
        "json": JSON_HELP,
        "message": MESSAGE_HELP,
    }
)
@reports_errors
def deploy(
    c: Context,
    tag: str,
    env: str = "local",
    context: str = "",
    namespace: str = "",
    env_file: str = "",
    timeout: int = 300,
    dry_run: bool = False,
    smoke: bool = True,
    smoke_url: str = "",
    rollback_on_failure: bool = True,
    allow_tag: bool = False,
    force_unlock: bool = False,
    lock_wait: str = "0",
    prune: bool = True,
    json: bool = False,
    message: str = "",
) -> None:
    """Deploy a tag: preflight, config, migrate Job, rollout, smoke, record history."""
    from eq_deploy.contract import json_result
    from eq_deploy.deploy import DeployOptions
    from eq_deploy.deploy import deploy as run_deploy
    from eq_deploy.lock import parse_duration

    with json_result("deploy", json, tag=tag) as contract:
        contract.outcome = run_deploy(
            DeployOptions(
                tag=tag,
                target=_target(env, context, namespace, env_file),
                timeout=timeout,
                dry_run=dry_run,
                smoke=smoke,
                smoke_url=smoke_url,
                rollback_on_failure=rollback_on_failure,
                allow_tag=allow_tag,
                force_unlock=force_unlock,
                lock_wait=parse_duration(lock_wait, "--lock-wait"),
                prune=prune,
                message=message,
            ),
            _reporter(to_stderr=json),
        )


@task(
    help={
        "to": "tag to roll back to [the previous successful deploy]",
        **WHERE_HELP,
        "timeout": "seconds to wait for the rollout [300]",
        "force": "roll back even over a contract migration or an unknown schema (not advised)",
        "smoke": "run the smoke checks (--no-smoke skips them)",
        "smoke_url": "base URL for smoke checks",
        "force_unlock": "remove another deploy's lock first",
        "keep_settings": "restore the code only; keep the settings that serve now",
        "downgrade": "first run alembic downgrade to the target's head (with the newer image)",
        "lock_wait": "wait this long for a held lock (90s, 5m, 1h) [0: fail at once, exit 4]",
        "json": JSON_HELP,
        "message": MESSAGE_HELP,
    }
)
@reports_errors
def rollback(
    c: Context,
    to: str = "",
    env: str = "local",
    context: str = "",
    namespace: str = "",
    env_file: str = "",
    timeout: int = 300,
    force: bool = False,
    smoke: bool = True,
    smoke_url: str = "",
    force_unlock: bool = False,
    keep_settings: bool = False,
    downgrade: bool = False,
    lock_wait: str = "0",
    json: bool = False,
    message: str = "",
) -> None:
    """Roll back to a prior successful release: its code and its settings, when the schema
    allows (every migration since is an expand; else --downgrade)."""
    from eq_deploy.contract import json_result
    from eq_deploy.lock import parse_duration
    from eq_deploy.rollback import RollbackOptions
    from eq_deploy.rollback import rollback as run_rollback

    with json_result("rollback", json, tag=to) as contract:
        contract.outcome = run_rollback(
            RollbackOptions(
                to=to or None,
                target=_target(env, context, namespace, env_file),
                timeout=timeout,
                force=force,
                smoke=smoke,
                smoke_url=smoke_url,
                force_unlock=force_unlock,
                keep_settings=keep_settings,
                downgrade=downgrade,
                lock_wait=parse_duration(lock_wait, "--lock-wait"),
                message=message,
            ),
            _reporter(to_stderr=json),
        )


@task(
    help={
        **WHERE_HELP,
        "json": "print JSON",
        "changes": "OLD..NEW (revisions or tags): which settings keys differ, values redacted",
    }
)
@reports_errors
def history(
    c: Context,
    env: str = "local",
    context: str = "",
    namespace: str = "",
    env_file: str = "",
    json: bool = False,
    changes: str = "",
) -> None:
    """Show the releases recorded in the cluster (newest first; the last 10 successful and
    the last 10 others)."""
    from eq_deploy.inspect import show_history

    show_history(
        _target(env, context, namespace, env_file), _reporter(), as_json=json, changes=changes
    )


@task(help={**WHERE_HELP, "json": JSON_HELP})
@reports_errors
def status(
    c: Context,
    env: str = "local",
    context: str = "",
    namespace: str = "",
    env_file: str = "",
    json: bool = False,
) -> None:
    """Show what is deployed: tag, image, readiness, pods, last deploy, lock."""
    import json as jsonlib

    from eq_deploy.inspect import show_status

    state = show_status(_target(env, context, namespace, env_file), _reporter(to_stderr=json))
    if json:
        print(jsonlib.dumps(state, indent=2, sort_keys=True))


@task(
    help={
        "tag": "image tag to compare (sha-<commit>)",
        **WHERE_HELP,
        "allow_tag": "accept a tag that is not sha-<hex>",
        "json": JSON_HELP,
        "exit_code": "exit 2 when something would change, 0 when nothing would",
    }
)
@reports_errors
def diff(
    c: Context,
    tag: str,
    env: str = "local",
    context: str = "",
    namespace: str = "",
    env_file: str = "",
    allow_tag: bool = False,
    json: bool = False,
    exit_code: bool = False,
) -> None:
    """Show what deploying a tag would change (server-side dry run), changing nothing."""
    import json as jsonlib

    from eq_deploy.deploy import diff as run_diff
    from eq_deploy.inspect import change_summary

    changes = run_diff(
        tag,
        _target(env, context, namespace, env_file),
        _reporter(to_stderr=json),
        allow_tag=allow_tag,
    )
    summary = change_summary(tag, changes)
    if json:
        print(jsonlib.dumps(summary, indent=2, sort_keys=True))
    if exit_code and summary["changed"]:
        raise Exit(code=2)


@task(
    help={
        "url": "base URL [the Service's, else a port-forward]",
        **WHERE_HELP,
        "deadline": "seconds to keep retrying [60]",
    }
)
@reports_errors
def smoke(
    c: Context,
    url: str = "",
    env: str = "local",
    context: str = "",
    namespace: str = "",
    env_file: str = "",
    deadline: int = 60,
) -> None:
    """Check /health (deployed sha), /health/db and /api/v1/topics/ of the running API."""
    from eq_deploy.inspect import run_smoke

    run_smoke(_target(env, context, namespace, env_file), _reporter(), url=url, deadline=deadline)


@invoke_task(
    positional=["action"],
    help={
        "action": "acquire | release | status",
        "message": "why (acquire; shown to every deploy that finds the lock held)",
        "duration": "how long a lock taken by hand lasts (acquire) [24h]",
        "force": "release a lock a deploy holds (when that deploy is gone)",
        **WHERE_HELP,
    },
)
@reports_errors
def lock(
    c: Context,
    action: str,
    message: str = "",
    duration: str = "24h",
    force: bool = False,
    env: str = "local",
    context: str = "",
    namespace: str = "",
    env_file: str = "",
) -> None:
    """Hold the deploy lock by hand (inv lock acquire -m "freeze for incident"), release it,
    or show who holds it."""
    from eq_deploy.inspect import lock_command

    lock_command(
        _target(env, context, namespace, env_file),
        _reporter(),
        action,
        message=message,
        duration=duration,
        force=force,
    )


@task(
    help={
        **WHERE_HELP,
        "yes": "really delete (without it: list what would be deleted, change nothing)",
    }
)
@reports_errors
def destroy(
    c: Context,
    env: str = "local",
    context: str = "",
    namespace: str = "",
    env_file: str = "",
    yes: bool = False,
) -> None:
    """Remove the app from a namespace: workloads, Jobs, settings objects, history."""
    from eq_deploy.inspect import destroy as run_destroy

    run_destroy(_target(env, context, namespace, env_file), _reporter(), yes=yes)


@invoke_task(  # with short flags: `inv logs -f`
    help={
        **WHERE_HELP,
        "follow": "keep streaming new lines (Ctrl-C ends it)",
        "tail": "lines per container to start with [50]",
        "migrations": "the migration Jobs' pods instead of the API's",
    }
)
@reports_errors
def logs(
    c: Context,
    follow: bool = False,
    tail: int = 50,
    migrations: bool = False,
    env: str = "local",
    context: str = "",
    namespace: str = "",
    env_file: str = "",
) -> None:
    """The app's logs: every API pod's, each line prefixed with its pod (kubectl logs)."""
    from eq_deploy.inspect import show_logs

    code = show_logs(
        _target(env, context, namespace, env_file),
        _reporter(),
        follow=follow,
        tail=tail,
        migrations=migrations,
    )
    if code:
        raise Exit(code=code)
