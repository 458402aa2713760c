"""Smoke checks through the Service: /health (and that it reports the deployed sha),
/health/db, /api/v1/topics/ — retried until a deadline, then one line naming the check."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from eq_deploy.errors import DeployError


@dataclass(frozen=True)
class Check:
    path: str
    describe: str


CHECKS = (
    Check("/health", "the API answers"),
    Check("/health/db", "the API reaches its database"),
    Check("/api/v1/topics/", "the API serves data from its schema"),
)


def smoke(
    base_url: str,
    *,
    expect_sha: str = "",
    expect_image: str = "",
    deadline: float = 60,
    status: Any = None,
) -> str:
    """Run the checks against `base_url`; return a one-line note, or raise DeployError."""
    import httpx

    end = time.monotonic() + deadline
    last = ""
    base = base_url.rstrip("/")
    with httpx.Client(timeout=5, follow_redirects=False) as client:
        for check in CHECKS:
            while True:
                problem = _run(client, base, check, expect_sha, expect_image)
                if problem is None:
                    break
                last = problem
                if time.monotonic() > end:
                    raise DeployError(
                        f"smoke: {check.path} at {base}: {last} (after {deadline:.0f}s)"
                    )
                if status is not None:
                    status(f"{check.path}: {last}")
                time.sleep(1)
    return f"{len(CHECKS)} checks passed at {base}"


def _run(client: Any, base: str, check: Check, expect_sha: str, expect_image: str) -> str | None:
    import httpx

    try:
        response = client.get(base + check.path)
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__})"
    if response.status_code != 200:
        where = response.headers.get("location")
        return f"HTTP {response.status_code}" + (f" → {where}" if where else "")
    try:
        body = response.json()
    except ValueError:
        return "answer is not JSON"
    if not isinstance(body, dict) or body.get("success") is not True:
        return "answer lacks success: true"
    if check.path == "/health":
        deployment = (body.get("data") or {}).get("deployment") or {}
        if expect_sha and deployment.get("sha") != expect_sha:
            got = deployment.get("sha")
            return f"reports sha {got!r}, not {expect_sha!r} (old pods still serving?)"
        if expect_image and deployment.get("image") != expect_image:
            return f"reports image {deployment.get('image')!r}, not the deployed one"
    if check.path == "/api/v1/topics/" and not isinstance(body.get("data"), list):
        return "data is not a list"
    return None
