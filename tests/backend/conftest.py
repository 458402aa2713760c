"""Fixtures for the backend's contract tests: real PostgreSQL, Redis and local HTTP fakes.

Session: one throwaway PostgreSQL (or EQ_TEST_DATABASE_URL), one throwaway Redis (or
EQ_TEST_REDIS_URL), a local OpenID provider and an OpenAI-compatible endpoint. A template
database is migrated and seeded once through the app's own CLI; each test module gets a
fresh copy of it, its own app instance and a flushed Redis.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from eq_cluster.services import PostgresServer, RedisServer, ServiceUnavailable
from eqtest.api import ADMIN_EMAIL, ALGORITHM, SECRET_KEY, Api, User, create_user
from eqtest.app import ChangesHeard, make_app
from eqtest.cli import run_cli
from eqtest.fakes import FakeLlm, FakeOidcProvider

FRONTEND_URL = "http://frontend.test/"


def _service(factory: Callable[[], Any]) -> Any:
    try:
        return factory()
    except ServiceUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    server = _service(PostgresServer.from_env_or_start)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = _service(RedisServer.from_env_or_start)
    yield server
    if server.can_restart:
        server.stop()


@pytest.fixture(scope="session")
def oidc() -> Iterator[FakeOidcProvider]:
    server = FakeOidcProvider()
    yield server
    server.close()


@pytest.fixture(scope="session")
def llm() -> Iterator[FakeLlm]:
    server = FakeLlm()
    yield server
    server.release.set()
    server.close()


@pytest.fixture(scope="session")
def base_env(oidc: FakeOidcProvider, llm: FakeLlm) -> dict[str, str]:
    """The environment of the app under test, minus DATABASE_URL and REDIS_URL."""
    return {
        "SECRET_KEY": SECRET_KEY,
        "ALGORITHM": ALGORITHM,
        "ACCESS_TOKEN_EXPIRE_MINUTES": "30",
        "GOOGLE_CLIENT_ID": oidc.client_id,
        "GOOGLE_CLIENT_SECRET": oidc.client_secret,
        "GOOGLE_AUTHORIZE_URL": oidc.authorize_url,
        "GOOGLE_TOKEN_URL": oidc.token_url,
        "GOOGLE_USERINFO_URL": oidc.userinfo_url,
        "OPENAI_API_KEY": "sk-test-key",
        "OPENAI_BASE_URL": llm.api_base,
        "OPENAI_MODEL": "test-model",
        "OPENAI_TIMEOUT_SECONDS": "2",
        "ANALYZE_RATE_LIMIT": "1000/minute",
        "WRITE_RATE_LIMIT": "1000/minute",
        "ADMIN_EMAILS": f"nobody@example.test, {ADMIN_EMAIL.lower()}",
        "COOKIE_SECURE": "true",
        "FRONTEND_URL": FRONTEND_URL,
        "CORS_ORIGINS": '["http://frontend.test"]',
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "DEPLOYED_AT": "",
        "DEPLOY_SHA": "",
        "DEPLOY_IMAGE": "",
        "DEPLOY_BY": "",
    }


@pytest.fixture(scope="session")
def template_db(
    pg: PostgresServer, redis_server: RedisServer, base_env: dict[str, str]
) -> Iterator[str]:
    """A database migrated to head and seeded by the app's own CLI, copied per module."""
    name = f"eq_template_{os.getpid()}"
    url = pg.create_database(name)
    base_env = {**base_env, "REDIS_URL": redis_server.url}
    here = Path(__file__).parent  # no stray .env from the repo root
    run_cli("migrate", env={**base_env, "DATABASE_URL": url}, cwd=here)
    run_cli("seed", env={**base_env, "DATABASE_URL": url}, cwd=here)
    yield name
    pg.drop_database(name)


def _module_db_name(request: pytest.FixtureRequest) -> str:
    mod = request.module.__name__.rsplit(".", 1)[-1]
    return "eq_" + re.sub(r"[^a-z0-9_]", "_", mod.lower())[:40]


@pytest.fixture(scope="module")
def database_url(
    pg: PostgresServer, template_db: str, request: pytest.FixtureRequest
) -> Iterator[str]:
    name = _module_db_name(request)
    url = pg.create_database(name, template=template_db)
    yield url
    pg.drop_database(name)


@pytest.fixture(scope="module")
def db(pg: PostgresServer, database_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to this module's database, for arranging and checking rows."""
    conn = pg.connect(database_url.rsplit("/", 1)[-1])
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True, socket_timeout=2)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="module")
def app_env(
    base_env: dict[str, str], database_url: str, redis_server: RedisServer
) -> dict[str, str]:
    return {**base_env, "DATABASE_URL": database_url, "REDIS_URL": redis_server.url}


async def _client_for(app: Any) -> AsyncIterator[Any]:
    """An httpx client on the app, with its lifespan run in the test's own event loop.

    (Litestar's AsyncTestClient runs the lifespan in a portal thread with another loop, so
    the app's pool would be created in one loop and disposed in another.) The lifespan
    lives in a task of its own because pytest-asyncio tears fixtures down in another task.
    """
    import httpx

    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # startup failed: raise its error here
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver.local"
        ) as client:
            yield client
    finally:
        stop.set()
        await task


@pytest.fixture(scope="module")
def app(app_env: dict[str, str], redis_client: redis.Redis) -> Any:
    return make_app(app_env)


async def _api_for(app: Any) -> AsyncIterator[Api]:
    """The API of a running app; each request first waits until the app has heard of
    every change made straight in the database before it (eqtest.app.ChangesHeard)."""
    settle = ChangesHeard(app)
    try:
        async for client in _client_for(app):
            yield Api(client, settle=settle)
    finally:
        await settle.close()


@pytest.fixture(scope="module")
async def api(app: Any) -> AsyncIterator[Api]:
    async for client in _api_for(app):
        yield client


@pytest.fixture(scope="module")
def app_client_factory() -> Callable[[dict[str, str]], Any]:
    """Build another app from an env and give an async context manager over its client."""
    import contextlib

    @contextlib.asynccontextmanager
    async def factory(env: dict[str, str]) -> AsyncIterator[Api]:
        async for client in _api_for(make_app(env)):
            yield client

    return factory


@pytest.fixture(scope="module")
def admin(db: psycopg.Connection) -> User:
    """The administrator named by ADMIN_EMAILS (in another case there)."""
    return create_user(db, name="Admin", email=ADMIN_EMAIL)


@pytest.fixture(scope="module")
def replica_factory() -> Callable[[dict[str, str]], Any]:
    """Another app on an env (a second replica) and its API: `async with f(env) as (app, api)`."""
    import contextlib

    @contextlib.asynccontextmanager
    async def factory(env: dict[str, str]) -> AsyncIterator[tuple[Any, Api]]:
        app = make_app(env)
        async for client in _api_for(app):
            yield app, client

    return factory


@pytest.fixture
def user(db: psycopg.Connection) -> User:
    return create_user(db)


@pytest.fixture
def other(db: psycopg.Connection) -> User:
    return create_user(db)


@pytest.fixture
def new_user(db: psycopg.Connection) -> Callable[..., User]:
    return lambda *a, **kw: create_user(db, *a, **kw)


@pytest.fixture
def llm_reset(llm: FakeLlm) -> Iterator[FakeLlm]:
    llm.reset()
    yield llm
    llm.reset()
