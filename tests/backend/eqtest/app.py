"""Build the app under test from an exact environment (no .env file, no process env)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn

from eqtest.api import Api


def make_settings(env: dict[str, str]) -> Any:
    from eq_backend.settings import load_settings

    return load_settings(env, env_file=str(Path(__file__).parent / "no-such.env"))


def make_app(env: dict[str, str]) -> Any:
    from eq_backend.app import create_app

    return create_app(make_settings(env))


@contextlib.asynccontextmanager
async def running(env: dict[str, str]) -> AsyncIterator[tuple[Any, Api]]:
    """The app built from `env`, served by uvicorn in this loop, and a client on it. Over
    a real socket, because a deadline's 503 is on the wire while the cancelled handler
    still unwinds (seconds, on a frozen database): an in-process transport would only
    return once the app had."""
    app = make_app(env)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, timeout_graceful_shutdown=15
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield app, Api(client)
    finally:
        server.should_exit = True
        await serving


class ChangesHeard:
    """Awaitable: returns once the app has heard every table change committed before.

    Tests arrange rows straight in the database and then read through the API. The app
    hears of such changes by notification, a moment later (eq_backend.readcache); in a
    test that moment is a race. PostgreSQL delivers notifications in commit order, so
    once the app has heard a marker sent now, it has heard every earlier change too.
    """

    # A database that does not take the marker this fast is down or frozen (tests do that
    # on purpose): the app cannot hear anything then, so there is nothing to wait for.
    NOTIFY_TIMEOUT_SECONDS = 0.5

    def __init__(self, app: Any) -> None:
        self.ctx = app.state.ctx
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def __call__(self) -> None:
        fast = self.ctx.db.fast
        if fast is None or not self.ctx.read_caches.enabled:
            return  # nothing cached: every read goes to the database
        marker = f"test-marker-{uuid.uuid4().hex}"
        notify = asyncio.create_task(self._notify(fast.conninfo, marker))
        # Not wait_for(): cancelling a query on a frozen server waits for the server.
        done, _ = await asyncio.wait({notify}, timeout=self.NOTIFY_TIMEOUT_SECONDS)
        if not done or notify.exception() is not None:
            self._conn = None  # unusable now; a new one next time
            notify.add_done_callback(lambda t: t.cancelled() or t.exception())
            notify.cancel()
            return
        deadline = time.monotonic() + 5
        while self.ctx.read_caches.last_heard != marker:
            if not self.ctx.read_caches.enabled:
                return  # the app stopped listening (and caching) meanwhile
            if time.monotonic() > deadline:
                raise AssertionError("the app did not hear a table change notification in 5 s")
            await asyncio.sleep(0.001)

    async def _notify(self, conninfo: str, marker: str) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        await self._conn.execute("SELECT pg_notify('eq_table_changes', %s)", (marker,))

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


async def until(condition: Callable[[], Any], seconds: float = 5.0) -> None:
    """Wait (polling) until `condition()` holds; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
