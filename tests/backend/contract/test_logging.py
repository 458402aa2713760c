"""Structured logs: one line per request with status and duration; never a token or secret."""

import json
import logging
from urllib.parse import urlsplit

import httpx
import pytest
from eq_backend.observability import JSONFormatter
from eqtest.api import SECRET_KEY, Api, ok
from eqtest.fakes import FakeLlm, FakeOidcProvider, OidcUser


@pytest.fixture(scope="module")
def app_env(app_env):
    # production-like: JSON lines at the default level
    return {**app_env, "ENVIRONMENT": "production", "LOG_LEVEL": "INFO"}


def _lines(caplog) -> list[dict]:
    fmt = JSONFormatter()
    return [json.loads(fmt.format(r)) for r in caplog.records]


def _app_lines(caplog) -> list[dict]:
    """What the app logged: drop the test's own HTTP clients (the ASGI client and the
    "browser" that visits the authorize URL), which share httpx's loggers with the app."""
    out = []
    for line in _lines(caplog):
        if line["logger"].startswith("httpcore"):
            continue
        if line["logger"] == "httpx" and (
            "testserver.local" in line["msg"] or "/authorize?" in line["msg"]
        ):
            continue
        out.append(line)
    return out


async def test_one_access_line_per_request_with_status_and_duration(api: Api, user, caplog) -> None:
    caplog.set_level(logging.INFO)
    caplog.clear()
    ok(await api.get("/api/v1/users/me", user=user), "Current user retrieved successfully")
    await api.get("/api/v1/topics/999999999")
    access = [ln for ln in _lines(caplog) if "status" in ln]
    assert [a["status"] for a in access] == [200, 404], access
    for a in access:
        assert isinstance(a["duration_ms"], int | float)
        assert a["level"] in ("INFO", "WARNING")


async def test_logs_never_carry_tokens_or_secrets(
    api: Api, user, oidc: FakeOidcProvider, llm_reset: FakeLlm, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    # a cookie, a bearer token, a query string with a code, the LLM key, a refresh token
    await api.get("/api/v1/users/me", user=user)
    await api.get("/api/v1/users/me", bearer=user)
    secret_refresh = "refresh-token-that-must-not-be-logged"
    oidc.refresh_token = secret_refresh
    try:
        oidc.next_user = OidcUser("sub-log", "log@example.test", "Logger")
        start = await api.get("/api/v1/auth/login/google")
        async with httpx.AsyncClient() as browser:
            back = await browser.get(start.headers["location"], follow_redirects=False)
        cb = urlsplit(back.headers["location"])
        cookie = "; ".join(
            c.split(";", 1)[0] for c in start.headers.get_list("set-cookie") if "=" in c
        )
        resp = await api.get(f"{cb.path}?{cb.query}", headers={"Cookie": cookie})
        assert resp.status_code == 307, resp.text
        issued = [c for c in resp.headers.get_list("set-cookie") if c.startswith("access_token=")]
        new_token = issued[0].split(";", 1)[0].split("=", 1)[1]
        code = dict(p.split("=", 1) for p in cb.query.split("&"))["code"]
    finally:
        oidc.refresh_token = "google-refresh-token-1"
    situation = ok(
        await api.post("/api/v1/situations/", json={"context": "c", "question": "q"}, user=user),
        "Situation created successfully",
    )
    llm_reset.behaviour.mode = "garbage"
    await api.post(
        "/api/v1/analysis/analyze",
        json={"situation_id": situation["id"], "answer_text": "x"},
        user=user,
    )
    text = "\n".join(json.dumps(ln) for ln in _app_lines(caplog))
    assert text, "nothing was logged"
    for secret in (
        user.token,
        new_token,
        SECRET_KEY,
        oidc.client_secret,
        "sk-test-key",
        secret_refresh,
        code,
    ):
        assert secret not in text, f"a secret leaked into the logs: {secret[:12]}..."
