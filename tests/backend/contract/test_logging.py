"""Structured logs: one line per request with status and duration; never a token or secret."""

import asyncio
import json
import logging
from urllib.parse import urlsplit

import httpx
import pytest
from eq_backend.observability import FLUSH_EVERY_SECONDS, JSONFormatter
from eqtest.api import SECRET_KEY, Api, ok
from eqtest.fakes import FakeLlm, FakeOidcProvider, OidcUser


@pytest.fixture(scope="module")
def app_env(app_env):
    # production-like: JSON lines at the default level (metrics kept on the API's port)
    return {
        **app_env,
        "ENVIRONMENT": "production",
        "LOG_LEVEL": "INFO",
        "PUBLIC_BASE_URL": "http://testserver.local",
        "METRICS_PORT": "0",
    }


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


def _access_lines(capsys, app) -> list[dict]:
    """The JSON access lines written to stderr since the last call. They are queued and
    written in batches (eq_backend.observability.AccessLog): flush first."""
    app.state.ctx.access_log.flush()
    err = capsys.readouterr().err
    return [json.loads(ln) for ln in err.splitlines() if '"logger":"eq_backend.access"' in ln]


async def test_one_access_line_per_request_with_status_and_duration(
    api: Api, app, user, capsys
) -> None:
    _access_lines(capsys, app)
    ok(await api.get("/api/v1/users/me", user=user), "Current user retrieved successfully")
    await api.get("/api/v1/topics/999999999?q=never-logged")
    ok(await api.get("/health"), "Healthy")  # answered before routing: logged the same way
    access = _access_lines(capsys, app)
    assert [(a["method"], a["path"], a["status"]) for a in access] == [
        ("GET", "/api/v1/users/me", 200),
        ("GET", "/api/v1/topics/999999999", 404),
        ("GET", "/health", 200),
    ], access
    for a in access:
        assert set(a) == {"ts", "level", "logger", "msg", "method", "path", "status", "duration_ms"}
        assert a["level"] == "INFO"
        assert a["msg"] == "request"
        assert isinstance(a["duration_ms"], int | float)
        assert a["duration_ms"] >= 0
        assert a["ts"].endswith("Z")


async def test_access_lines_follow_log_level(app_env, app_client_factory, capsys) -> None:
    root = logging.getLogger()
    level = root.level  # LOG_LEVEL configures the process's logging, not one app's
    try:
        async with app_client_factory({**app_env, "LOG_LEVEL": "WARNING"}) as quiet:
            capsys.readouterr()
            await quiet.get("/health")
            await quiet.get("/api/v1/topics/")
            await asyncio.sleep(FLUSH_EVERY_SECONDS + 0.05)  # a queued line is written by now
            assert '"eq_backend.access"' not in capsys.readouterr().err
    finally:
        root.setLevel(level)


async def test_queued_access_lines_are_written_without_an_explicit_flush(api: Api, capsys) -> None:
    capsys.readouterr()
    await api.get("/health")
    await asyncio.sleep(FLUSH_EVERY_SECONDS + 0.05)
    assert '"path":"/health"' in capsys.readouterr().err


async def test_logs_never_carry_tokens_or_secrets(
    api: Api, app, user, oidc: FakeOidcProvider, llm_reset: FakeLlm, caplog, capsys
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    capsys.readouterr()
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
    access = _access_lines(capsys, app)
    assert len(access) >= 6, access
    text = "\n".join(json.dumps(ln) for ln in [*_app_lines(caplog), *access])
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
