"""The async engine and the connection helpers every service uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from eq_backend.settings import Settings


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
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "eq-backend"},
    )
    return create_async_engine(url, **kwargs)


class Database:
    """Hands out connections: autocommit for reads and single statements, `begin()` for
    multi-statement writes. Reads skip BEGIN/ROLLBACK round trips this way."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

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
        await self.engine.dispose()
