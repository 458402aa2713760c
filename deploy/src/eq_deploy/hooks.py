"""Hooks: `post_deploy` and `on_failure` in the environment file, so a deploy or rollback can
tell a chat, a pager or a dashboard how it went.

A hook is a command (split like a shell would, run without one) or an http(s):// webhook
URL. `${NAME}` in it is taken from the process environment (a CI secret such as a Slack
webhook URL), never written to a file. A command gets the DEPLOY_* variables in its
environment; a webhook gets them as JSON (`{"text": "<one line>", "deploy": {...}}`, which
Slack's incoming webhooks read). Neither the expanded command nor the URL is ever printed
(either may hold a token). A hook that fails is a warning: it never changes the exit code.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eq_deploy.contract import RESULTS
from eq_deploy.errors import DeployError

if TYPE_CHECKING:
    from eq_deploy.session import Session

EVENTS = ("post_deploy", "on_failure")
HOOK_TIMEOUT = 30.0
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class HookRun:
    """What a hook is told about the command that just ended."""

    action: str  # deploy | rollback
    tag: str
    exit_code: int = 0
    reason: str = ""
    image: str = ""
    digest: str = ""
    revision: int = 0
    url: str = ""
    message: str = ""

    def variables(self, session: Session) -> dict[str, str]:
        from eq_deploy.lock import run_url, who

        try:
            context = session.kube.context
        except DeployError:  # the failure being reported may be that very connection
            context = session.context or ""
        return {
            "DEPLOY_ACTION": self.action,
            "DEPLOY_RESULT": RESULTS.get(self.exit_code, "failed"),
            "DEPLOY_EXIT_CODE": str(self.exit_code),
            "DEPLOY_TAG": self.tag,
            "DEPLOY_IMAGE": self.image,
            "DEPLOY_DIGEST": self.digest,
            "DEPLOY_REVISION": str(self.revision),
            "DEPLOY_REASON": self.reason,
            "DEPLOY_URL": self.url,
            "DEPLOY_MESSAGE": self.message,
            "DEPLOY_ENV": session.env.name,
            "DEPLOY_NAMESPACE": session.namespace,
            "DEPLOY_CONTEXT": context,
            "DEPLOY_BY": who(),
            "DEPLOY_RUN_URL": run_url(),
        }


def run_hook(
    session: Session, event: str, run: HookRun, *, time_left: float = HOOK_TIMEOUT
) -> None:
    """Run the environment's hook for `event`, if any, within `time_left` seconds."""
    spec = session.env.hooks.get(event, "")
    if not spec:
        return
    reporter = session.reporter
    timeout = min(HOOK_TIMEOUT, time_left)
    if timeout < 0.5:
        reporter.line(f"warning: hook {event} skipped: no time left before the second signal")
        return
    variables = {**run.variables(session), "DEPLOY_EVENT": event}
    try:
        target = expand(spec, event)
        if target.startswith(("https://", "http://")):
            note = _webhook(target, variables, timeout)
        else:
            note = _command(target, variables, timeout)
    except DeployError as exc:
        reporter.line(f"warning: hook {event}: {exc.message}")
        return
    reporter.line(f"hook {event}: {note}")


def expand(spec: str, event: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise DeployError(f"${{{name}}} is not set in the environment")
        return os.environ[name]

    return _VARIABLE.sub(value, spec.strip())


def _command(command: str, variables: dict[str, str], timeout: float) -> str:
    try:
        argv = shlex.split(command)
        # The environment file's own command, as its author wrote it: no shell.
        result = subprocess.run(
            argv,
            env={**os.environ, **variables},
            stdout=2,  # stdout stays the --json result's
            timeout=timeout,
            check=False,
        )
    except (OSError, ValueError) as exc:
        raise DeployError(f"command could not run ({type(exc).__name__})") from None
    except subprocess.TimeoutExpired:
        raise DeployError(f"command still running after {timeout:.0f}s: stopped") from None
    if result.returncode != 0:
        raise DeployError(f"command exited {result.returncode}")
    return "command exited 0"


def _webhook(url: str, variables: dict[str, str], timeout: float) -> str:
    import httpx

    text = (
        f"{variables['DEPLOY_ACTION']} {variables['DEPLOY_TAG']} to "
        f"{variables['DEPLOY_NAMESPACE']} ({variables['DEPLOY_ENV']}): "
        f"{variables['DEPLOY_RESULT']}"
        + (f": {variables['DEPLOY_REASON']}" if variables["DEPLOY_REASON"] else "")
    )
    try:
        response = httpx.post(url, json={"text": text, "deploy": variables}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise DeployError(f"webhook unreachable ({type(exc).__name__})") from None
    if not response.is_success:
        raise DeployError(f"webhook answered HTTP {response.status_code}")
    return f"webhook answered HTTP {response.status_code}"
