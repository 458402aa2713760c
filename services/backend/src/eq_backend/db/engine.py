"""The async engine and the connection helpers every service uses."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection as PsycopgConnection
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Executable, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from eq_backend.settings import Settings


def server_options(settings: Settings) -> dict[str, str]:
    """libpq `options`: a statement that runs longer than DB_STATEMENT_TIMEOUT_SECONDS is
    cancelled by PostgreSQL itself (a live but slow database; a frozen one is bounded by
    the request deadline, eq_backend.deadline). Nothing when it is 0: PgBouncer refuses
    startup options unless told to ignore them (`ignore_startup_parameters = options`)."""
    millis = int(settings.db_statement_timeout_seconds * 1000)
    return {"options": f"-c statement_timeout={millis}"} if millis > 0 else {}


def create_engine(settings: Settings) -> AsyncEngine:
    """One engine per process; SQLite gets foreign keys switched on for every connection."""
    url = make_url(settings.database_url)
    kwargs: dict[str, Any] = {"pool_pre_ping": False}
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    kwargs.update(
        # Hot reads use FastReader's own pool; this one serves writes and the rest.
        pool_size=max(2, settings.db_pool_size // 2),
        max_overflow=settings.db_max_overflow,
        pool_recycle=1800,
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_args={
            "connect_timeout": 5,
            "application_name": "eq-backend",
            **server_options(settings),
        },
    )
    return create_async_engine(url, **kwargs)


# A read waiting for a pooled connection asks this often whether PostgreSQL still accepts
# connections, so one that began waiting just before it went away answers 503 within this
# (not after the whole checkout timeout).
RECHECK_SECONDS = 0.5
# While it refuses them, a read waits only for the one connection attempt its checkout
# starts (refused in a millisecond; when PostgreSQL is back, that read gets the connection).
REFUSED_WAIT_SECONDS = 0.1


class FastReader:
    """Hot-path reads on PostgreSQL straight through a psycopg pool.

    Statements are still SQLAlchemy Core, compiled once per statement object by the
    engine's own dialect; only execution skips SQLAlchemy's async layer, which measured
    several times slower per query than psycopg alone on this machine.

    When PostgreSQL refuses connections (stopped, restarting, failing over), reads fail
    within RECHECK_SECONDS, and the first read after it is back gets a connection at once:
    the pool makes one attempt per read instead of retrying on a backoff that grows to
    minutes (`reconnect_timeout=0`), and its outcome is tracked in `unreachable`.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        max_size: int,
        checkout_timeout: float,
        options: dict[str, str],
    ) -> None:
        self._dialect = engine.dialect
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self.pool = AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=max(max_size, 1),
            open=False,
            timeout=checkout_timeout,
            reconnect_timeout=0,
            reconnect_failed=self._refused,
            configure=self._connected,
            kwargs={
                "autocommit": True,
                "row_factory": namedtuple_row,
                "connect_timeout": 5,
                **options,
            },
            name="eq-fast-reads",
        )
        self._compiled: dict[int, tuple[Executable, str, dict[str, Any]]] = {}
        self.opened = False
        self.unreachable = False  # the last connection attempt failed

    async def _refused(self, _pool: AsyncConnectionPool) -> None:
        self.unreachable = True

    async def _connected(self, _conn: PsycopgConnection[Any]) -> None:
        self.unreachable = False

    async def _checkout(self) -> PsycopgConnection[Any]:
        """A pooled connection within the checkout timeout; PoolTimeout sooner when the
        database is known to refuse connections."""
        give_up_at = time.monotonic() + self.pool.timeout
        while True:
            wait = REFUSED_WAIT_SECONDS if self.unreachable else RECHECK_SECONDS
            wait = min(wait, give_up_at - time.monotonic())
            try:
                return await self.pool.getconn(timeout=max(wait, 0.0))
            except PoolTimeout:
                if self.unreachable or time.monotonic() >= give_up_at:
                    raise

    def _compile(self, stmt: Executable) -> tuple[str, dict[str, Any]]:
        cached = self._compiled.get(id(stmt))
        if cached is None or cached[0] is not stmt:
            compiled = stmt.compile(dialect=self._dialect)  # type: ignore[attr-defined]
            cached = (stmt, compiled.string, dict(compiled.params))
            self._compiled[id(stmt)] = cached
        return cached[1], cached[2]

    async def all(self, stmt: Executable, params: dict[str, Any] | None = None) -> list[Any]:
        sql, defaults = self._compile(stmt)
        values = {**defaults, **params} if params else defaults
        conn = await self._checkout()
        try:
            cursor = await conn.execute(sql, values)
            return await cursor.fetchall()
        finally:
            await self.pool.putconn(conn)

    async def open(self) -> None:
        await self.pool.open(wait=False)
        self.opened = True

    async def close(self) -> None:
        if self.opened:
            await self.pool.close(timeout=5)
            self.opened = False


class Database:
    """Hands out connections: autocommit for reads and single statements, `begin()` for
    multi-statement writes. Reads skip BEGIN/ROLLBACK round trips this way."""

    def __init__(
        self, engine: AsyncEngine, fast_pool_size: int = 10, settings: Settings | None = None
    ) -> None:
        self.engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.fast: FastReader | None = None
        if engine.dialect.name == "postgresql":
            settings = settings or Settings()
            self.fast = FastReader(
                engine,
                fast_pool_size,
                settings.db_pool_timeout_seconds,
                server_options(settings),
            )

    async def open(self) -> None:
        """Start the fast read pool (PostgreSQL); called on app startup."""
        if self.fast is not None:
            await self.fast.open()

    async def fetch_all(
        self, stmt: Executable, params: dict[str, Any] | None = None
    ) -> Sequence[Any]:
        """All rows of a read-only statement, through the fastest path available."""
        if self.fast is not None and self.fast.opened:
            return await self.fast.all(stmt, params)
        async with self.connect() as conn:
            rows: Sequence[Any] = (await conn.execute(stmt, params or {})).all()
        return rows

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection in autocommit mode: each statement commits on its own."""
        async with self._autocommit.connect() as conn:
            yield conn

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction, committed on success, rolled back on error."""
        async with self.engine.begin() as conn:
            yield conn

    async def dispose(self) -> None:
        if self.fast is not None:
            await self.fast.close()
        await self.engine.dispose()
