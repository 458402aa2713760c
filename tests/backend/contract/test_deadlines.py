"""Deadlines under hung dependencies (issue 12, findings 1-3).

A frozen PostgreSQL (SIGSTOP of the test-owned server), a slow statement, an exhausted
pool, and an upstream (LLM, Google) that trickles, floods or nests: every request answers
within its deadline with the envelope, and /health keeps answering meanwhile. Timings are
bounds (deadline + slack), not benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from eq_cluster.services import PostgresServer
from eqtest.api import Api, User, create_user, err, ok
from eqtest.app import running
from eqtest.hostile import HostileServer, completion
from sqlalchemy import text

# A generous margin over each deadline for a shared two-core machine.
SLACK_SECONDS = 2.0
# /health must keep answering this fast while another request is stuck or parsing.
HEALTH_BOUND_SECONDS = 1.0


class HealthWatch:
    """Polls GET /health while the block runs; `worst` is the slowest answer seen."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.latencies: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        while True:
            started = time.monotonic()
            resp = await self.api.get("/health")
            assert resp.status_code == 200, resp.text
            self.latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> HealthWatch:
        self._task = asyncio.create_task(self._poll())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def worst(self) -> float:
        assert self.latencies, "/health was never answered while the request ran"
        return max(self.latencies)


def _postgres_pids(pg: PostgresServer) -> list[int]:
    main = pg.postmaster_pid()
    children = Path(f"/proc/{main}/task/{main}/children")
    return [main, *(int(p) for p in children.read_text().split())]


@contextlib.contextmanager
def frozen(pg: PostgresServer) -> Iterator[None]:
    """Every process of the test-owned PostgreSQL stopped (SIGSTOP) inside the block."""
    if pg.data_dir is None:
        pytest.fail("this test needs the throwaway PostgreSQL (unset EQ_TEST_DATABASE_URL)")
    pids = _postgres_pids(pg)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def situation_id(db: psycopg.Connection) -> int:
    owner = create_user(db, name="Deadline Owner")
    row = db.execute(
        "INSERT INTO situations (user_id, context, question) VALUES (%s, 'ctx', 'q?') RETURNING id",
        (owner.id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    yield server
    server.close()


# --- a frozen database --------------------------------------------------------------------


async def test_reads_answer_503_within_the_deadline_when_postgres_is_frozen(
    pg: PostgresServer, app_env: dict[str, str], user: User, situation_id: int
) -> None:
    """Finding 1: these routes gave no answer within 40 s with PostgreSQL stopped."""
    env = {**app_env, "READ_CACHE": "false", "REQUEST_TIMEOUT_SECONDS": "2"}
    routes = [
        ("/api/v1/topics/", None),
        ("/api/v1/situations/feed", None),
        (f"/api/v1/situations/{situation_id}", None),
        ("/api/v1/users/me", user),
    ]
    async with running(env) as (_app, api):
        for path, who in routes:  # pooled connections exist before the freeze
            assert (await api.get(path, user=who)).status_code == 200
        with frozen(pg):
            async with HealthWatch(api) as health:
                started = time.monotonic()
                answers = await asyncio.gather(*(api.get(p, user=who) for p, who in routes))
                elapsed = time.monotonic() - started
        worst_ms = health.worst * 1000
        print(f"\nfrozen database: 4 reads answered in {elapsed:.2f} s; /health {worst_ms:.1f} ms")
        for resp in answers:
            body = err(resp, 503)
            assert body["message"] == "Request timed out"
            assert resp.headers["retry-after"] == "1"
        assert elapsed < 2 + SLACK_SECONDS, f"answered after {elapsed:.1f} s"
        assert health.worst < HEALTH_BOUND_SECONDS
        # Once PostgreSQL runs again, so do the routes.
        deadline = time.monotonic() + 20
        while (await api.get("/api/v1/topics/")).status_code != 200:
            assert time.monotonic() < deadline, "no recovery within 20 s of SIGCONT"
            await asyncio.sleep(0.25)


async def test_statement_timeout_cancels_a_slow_statement_on_both_paths(
    app_env: dict[str, str],
) -> None:
    env = {**app_env, "DB_STATEMENT_TIMEOUT_SECONDS": "0.5"}
    async with running(env) as (app, _api):
        db = app.state.ctx.db
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            await db.fetch_all(text("SELECT pg_sleep(5)"))  # the fast read pool
        assert time.monotonic() - started < 0.5 + SLACK_SECONDS
        started = time.monotonic()
        with pytest.raises(Exception, match="statement timeout"):
            async with db.connect() as conn:  # SQLAlchemy's pool
                await conn.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < 0.5 + SLACK_SECONDS


async def test_an_exhausted_pool_is_503_within_the_checkout_timeout(
    app_env: dict[str, str],
) -> None:
    env = {**app_env, "READ_CACHE": "false", "DB_POOL_SIZE": "1", "DB_POOL_TIMEOUT_SECONDS": "0.5"}
    async with running(env) as (app, api):
        pool = app.state.ctx.db.fast.pool
        async with pool.connection():  # the only connection, held
            started = time.monotonic()
            resp = await api.get("/api/v1/topics/")
            elapsed = time.monotonic() - started
        assert err(resp, 503)["message"] == "Database unavailable"
        assert elapsed < 0.5 + SLACK_SECONDS
        ok(await api.get("/api/v1/topics/"), "Topics retrieved successfully")


# --- a hostile LLM ------------------------------------------------------------------------


async def _analyze(api: Api, user: User, situation_id: int) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    resp = await api.post(
        "/api/v1/analysis/analyze",
        json={"situation_id": situation_id, "answer_text": "I would listen first"},
        user=user,
    )
    return resp, time.monotonic() - started


async def test_a_trickling_llm_is_502_within_its_total_deadline(
    app_env: dict[str, str], hostile: HostileServer, user: User, situation_id: int
) -> None:
    """Finding 2: a byte every 4 s had no answer after 100 s (the timeout was per read)."""
    hostile.mode, hostile.interval = "trickle", 0.3
    env = {**app_env, "OPENAI_BASE_URL": hostile.url, "OPENAI_TIMEOUT_SECONDS": "2"}
    async with running(env) as (_app, api), HealthWatch(api) as health:
        resp, elapsed = await _analyze(api, user, situation_id)
    print(f"\ntrickling LLM: 502 in {elapsed:.2f} s; worst /health {health.worst * 1000:.1f} ms")
    body = err(resp, 502)
    assert body["message"] == "Analysis service unavailable"
    assert "within 2 s" in body["errors"][0]
    assert elapsed < 2 + SLACK_SECONDS
    assert health.worst < HEALTH_BOUND_SECONDS


async def test_a_flooding_llm_is_502_at_the_size_cap(
    app_env: dict[str, str], hostile: HostileServer, user: User, situation_id: int
) -> None:
    hostile.mode = "flood"
    env = {**app_env, "OPENAI_BASE_URL": hostile.url, "OPENAI_MAX_REPLY_BYTES": "200000"}
    async with running(env) as (_app, api):
        resp, elapsed = await _analyze(api, user, situation_id)
    body = err(resp, 502)
    assert "over 200000 bytes" in body["errors"][0]
    assert elapsed < 2 + SLACK_SECONDS


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("200,000 '{' as content", completion("{" * 200_000)),
        ("content nested 100,000 deep", completion("[" * 100_000 + "]" * 100_000)),
        ("content object nested 100,000 deep", completion('{"a":' * 100_000 + "1" + "}" * 100_000)),
        ("body nested 100,000 deep", b'{"choices":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        ("unterminated strings", completion('{"' + '\\"' * 100_000)),
    ],
)
async def test_a_hostile_llm_reply_is_502_fast_and_the_server_keeps_answering(
    app_env: dict[str, str],
    hostile: HostileServer,
    user: User,
    situation_id: int,
    name: str,
    body: bytes,
) -> None:
    """Finding 3: 200,000 '{' took 13-18 s to parse and froze every other request;
    a reply nested 100,000 deep was a 500 (RecursionError)."""
    hostile.mode, hostile.body = "body", body
    env = {**app_env, "OPENAI_BASE_URL": hostile.url}
    async with running(env) as (_app, api), HealthWatch(api) as health:
        resp, elapsed = await _analyze(api, user, situation_id)
        await asyncio.sleep(0.05)  # at least one /health after the parse
    print(f"\n{name}: 502 in {elapsed:.3f} s; worst /health {health.worst * 1000:.1f} ms")
    assert err(resp, 502)["message"] == "Analysis service returned an invalid reply"
    assert elapsed < SLACK_SECONDS
    assert health.worst < HEALTH_BOUND_SECONDS


# --- a slow Google ------------------------------------------------------------------------


async def test_a_trickling_google_is_502_within_its_total_deadline(
    app_env: dict[str, str], hostile: HostileServer
) -> None:
    hostile.mode, hostile.interval = "trickle", 0.3
    env = {**app_env, "GOOGLE_TOKEN_URL": hostile.url + "/token", "GOOGLE_TIMEOUT_SECONDS": "1.5"}
    async with running(env) as (_app, api):
        start = await api.get("/api/v1/auth/login/google")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        cookies = "; ".join(f"{k}={v}" for k, v in start.cookies.items())
        started = time.monotonic()
        resp = await api.get(
            "/api/v1/auth/callback/google",
            params={"code": "c", "state": state},
            headers={"Cookie": cookies},
        )
        elapsed = time.monotonic() - started
    assert err(resp, 502)["message"] == "Google is unreachable"
    assert elapsed < 1.5 + SLACK_SECONDS
