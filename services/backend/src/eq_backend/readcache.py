"""Hot reads cached per process, dropped the moment a table they read changes.

What keeps a cached answer from going stale:
- PostgreSQL announces every committed change to a cached table (triggers from migration
  f3d9b1c7a5e2 NOTIFY `eq_table_changes` with the table's name), whoever made it: another
  replica, the migration Job, psql. `listen_for_changes` holds a LISTEN connection and drops
  the caches that read that table.
- A cache serves only while that connection is up. When it drops, every cache is emptied
  and bypassed (reads go to the database, as without a cache) until LISTEN is back.
- After any write request of this process the edge drops every cache (eq_backend.edge),
  so whoever wrote reads their own write without waiting for the notification.
- A read stores its answer only if no drop happened since it started, so a read that
  raced a change never plants the old answer.
The remaining window is the notification's own delay for changes made elsewhere
(milliseconds), the same a client would see reading from a streaming replica.

SQLite (the embedded single-process default) never enables the caches. LISTEN needs a
session of its own: behind a pooler in transaction mode (PgBouncer's `pool_mode=transaction`)
notifications can be lost without an error, so set READ_CACHE=false there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import psycopg

logger = logging.getLogger("eq_backend.readcache")

CHANNEL = "eq_table_changes"
# How often an idle LISTEN connection is checked (a silently dead one would hear nothing).
PING_EVERY_SECONDS = 5.0
PING_TIMEOUT_SECONDS = 2.0
RETRY_MAX_SECONDS = 10.0

T = TypeVar("T")


class ReadCache(Generic[T]):
    """Answers of one kind of read, keyed by its parameters; depends on `tables`."""

    def __init__(self, owner: ReadCaches, tables: frozenset[str], max_entries: int) -> None:
        self._owner = owner
        self.tables = tables
        self.max_entries = max_entries
        self.generation = 0
        self._entries: dict[Hashable, T] = {}

    async def get_or_read(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        hit = self._entries.get(key)
        if hit is not None:
            return hit
        generation = self.generation
        value = await read()
        if self._owner.enabled and generation == self.generation:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # bounded, without LRU bookkeeping on the hot path
            self._entries[key] = value
        return value

    def drop(self) -> None:
        self.generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class ReadCaches:
    """The process's caches, switched on and off by the change listener."""

    def __init__(self) -> None:
        self._caches: list[ReadCache[object]] = []
        self.enabled = False
        # The payload of the newest notification (tests send a marker and wait for it).
        self.last_heard: str | None = None

    def add(self, tables: set[str], max_entries: int) -> ReadCache[T]:
        cache: ReadCache[T] = ReadCache(self, frozenset(tables), max_entries)
        self._caches.append(cache)  # type: ignore[arg-type]
        return cache

    def table_changed(self, table: str) -> None:
        self.last_heard = table
        for cache in self._caches:
            if table in cache.tables:
                cache.drop()

    def invalidate_all(self) -> None:
        for cache in self._caches:
            cache.drop()

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        self.invalidate_all()


async def listen_for_changes(conninfo: str, caches: ReadCaches) -> None:
    """LISTEN until cancelled; the caches are enabled exactly while the connection is up."""
    retry = 0.5
    failing = False
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                conninfo, autocommit=True, connect_timeout=5, application_name="eq-backend-listen"
            ) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                caches.set_enabled(True)
                if failing:
                    logger.info("table change notifications back; read caches on")
                failing, retry = False, 0.5
                while True:
                    async for note in conn.notifies(timeout=PING_EVERY_SECONDS):
                        caches.table_changed(note.payload)
                    # Quiet for a while (or busy for that long): is the connection alive?
                    await asyncio.wait_for(conn.execute("SELECT 1"), timeout=PING_TIMEOUT_SECONDS)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            if not failing:
                logger.warning(
                    "table change notifications lost; read caches off until back",
                    extra={"error": type(exc).__name__},
                )
            failing = True
        finally:
            caches.set_enabled(False)
        await asyncio.sleep(retry)
        retry = min(retry * 2, RETRY_MAX_SECONDS)
