"""The async engine and the connection helpers every service uses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy import Executable, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from eq_backend.db.pool import LoopPool
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


CONNECTION_SETUP = ("SET plan_cache_mode = force_generic_plan",)


class FastReader:
    """Hot-path reads (and single-statement writes) on PostgreSQL straight through psycopg,
    on a pool made for one event loop (eq_backend.db.pool).

    Statements are still SQLAlchemy Core, compiled once per statement object by the
    engine's own dialect; only execution skips SQLAlchemy's async layer, which measured
    several times slower per query than psycopg alone on this machine.

    Its connections run prepared statements on a generic plan (CONNECTION_SETUP): psycopg
    prepares a statement on its fifth run, and PostgreSQL's default then keeps planning
    the feed page anew on every run, because the generic plan's estimate (which cannot
    know how few rows `LIMIT :limit` leaves) looks dearer than the custom ones. That
    planning cost more than running it: PostgreSQL CPU per feed page, pgbench, 10
    clients, 2,504 situations: 236 µs planned each time, 85 µs on the generic plan
    (nested loops over primary-key and unique-index probes, the plan a custom one picks).
    The hot statements are all small and index-driven, where a generic plan is the plan.

    When PostgreSQL refuses connections (stopped, restarting, failing over), a read fails
    as soon as its connection does, or its one attempt to connect is refused; the first
    read after PostgreSQL is back connects at once (no reconnect backoff).
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
        self.pool = LoopPool(
            self.conninfo,
            max_size,
            checkout_timeout,
            {"autocommit": True, "row_factory": namedtuple_row, "connect_timeout": 5, **options},
            CONNECTION_SETUP,
        )
        self._compiled: dict[int, tuple[Executable, str, dict[str, Any]]] = {}
        self.opened = False

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
        conn = await self.pool.get()
        try:
            cursor = await conn.execute(sql, values)
            return await cursor.fetchall()
        finally:
            self.pool.put(conn)

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        if self.opened:
            await self.pool.close()
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
