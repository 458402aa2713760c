"""Hot reads cached per process, dropped the moment a table they read changes.

What keeps a cached answer from going stale:
- PostgreSQL announces every committed change to a cached table, whoever made it: another
  replica, the migration Job, psql. Triggers from migration f3d9b1c7a5e2 NOTIFY
  `eq_table_changes` with the table's name; those of b6e1d9a3c7f4 add, for situations,
  comments and reactions, the rows a change touched (`reactions:17/5`: user 5's reaction
  on situation 17). `listen_for_changes` holds a LISTEN connection: a table name drops the
  caches that read the table (`ReadCache`), a row notification drops only the entries of
  those rows (`KeyedCache`, through the handler its owner registered for the table).
  Where the row triggers are missing (a schema older than the code), a table name drops
  every row of its table instead.
- A cache serves only while that connection is up. When it drops, every cache is emptied
  and bypassed (reads go to the database, as without a cache) until LISTEN is back.
- A write of this process drops what it changed as soon as it commits (the services do),
  so whoever wrote reads their own write without waiting for the notification.
- A read stores its answer only if no drop of its key happened since it started, so a
  read that raced a change never plants the old answer.
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
from typing import Any, Generic, TypeVar

import psycopg

logger = logging.getLogger("eq_backend.readcache")

CHANNEL = "eq_table_changes"
ROW_TRIGGERS_INSTALLED = "SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'notify_row_keys')"
# How often an idle LISTEN connection is checked (a silently dead one would hear nothing).
PING_EVERY_SECONDS = 5.0
PING_TIMEOUT_SECONDS = 2.0
RETRY_MAX_SECONDS = 10.0

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
# Called with the keys a row notification names, or None when it names them all (`*`).
RowHandler = Callable[[list[str] | None], None]


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


class KeyedCache(Generic[K, T]):
    """Entries dropped one key at a time.

    A read takes a ticket (`ReadCaches.ticket()`) before it starts and `put`s its answer
    with it: the answer is kept only if neither its key nor the whole cache was dropped
    since, whatever other keys were.
    """

    def __init__(self, owner: ReadCaches, max_entries: int) -> None:
        self._owner = owner
        self.max_entries = max_entries
        self._entries: dict[K, T] = {}
        self._dropped_at: dict[K, int] = {}  # key -> the drop's number
        self._all_dropped_at = 0

    def get(self, key: K) -> T | None:
        return self._entries.get(key)

    def put(self, ticket: int, key: K, value: T) -> None:
        if not self._owner.enabled or self._all_dropped_at > ticket:
            return
        if self._dropped_at.get(key, 0) > ticket:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # bounded, without LRU bookkeeping on the hot path
        self._entries[key] = value

    def drop(self, key: K) -> None:
        self._entries.pop(key, None)
        if len(self._dropped_at) >= self.max_entries:
            self.drop_all()  # forgetting which keys dropped when: treat it as all of them
            return
        self._dropped_at[key] = self._owner.next_drop()

    def drop_all(self) -> None:
        self._entries.clear()
        self._dropped_at.clear()
        self._all_dropped_at = self._owner.next_drop()

    def __len__(self) -> int:
        return len(self._entries)


class ReadCaches:
    """The process's caches, switched on and off by the change listener."""

    def __init__(self) -> None:
        self._caches: list[ReadCache[object]] = []
        self._keyed: list[KeyedCache[Hashable, object]] = []
        self._row_handlers: dict[str, list[RowHandler]] = {}
        self._table_handlers: dict[str, list[Callable[[], None]]] = {}
        self._drops = 0
        self.enabled = False
        # Whether the database sends row notifications (migration b6e1d9a3c7f4); until
        # the listener has checked, a table name drops every row of the table.
        self.rows_announced = False
        # The payload of the newest notification (tests send a marker and wait for it).
        self.last_heard: str | None = None

    def add(self, tables: set[str], max_entries: int) -> ReadCache[T]:
        cache: ReadCache[T] = ReadCache(self, frozenset(tables), max_entries)
        self._caches.append(cache)  # type: ignore[arg-type]
        return cache

    def add_keyed(self, max_entries: int) -> KeyedCache[K, T]:
        cache: KeyedCache[K, T] = KeyedCache(self, max_entries)
        self._keyed.append(cache)  # type: ignore[arg-type]
        return cache

    def on_rows(self, table: str, handler: RowHandler) -> None:
        """Call `handler` for the row notifications of `table` (migration b6e1d9a3c7f4).
        The table-name notifications of that table are then ignored: every change to it
        also comes with its rows."""
        self._row_handlers.setdefault(table, []).append(handler)

    def on_table(self, table: str, handler: Callable[[], None]) -> None:
        """Call `handler` when `table` changes (its table-name notification)."""
        self._table_handlers.setdefault(table, []).append(handler)

    def ticket(self) -> int:
        """Taken before a read; see KeyedCache."""
        return self._drops

    def next_drop(self) -> int:
        self._drops += 1
        return self._drops

    def heard(self, payload: str) -> None:
        """One notification: `<table>` or `<table>:<key>,<key>...` or `<table>:*`."""
        self.last_heard = payload
        table, detailed, keys = payload.partition(":")
        if detailed:
            for handler in self._row_handlers.get(table, ()):
                handler(None if keys == "*" else keys.split(","))
        elif table not in self._row_handlers:
            self.table_changed(table)
        elif not self.rows_announced:
            # A database without the row triggers: the table name is all there is.
            self.wrote(table)

    def table_changed(self, table: str) -> None:
        """Drop everything that read `table` (the table-name notification)."""
        self.last_heard = table
        for cache in self._caches:
            if table in cache.tables:
                cache.drop()
        for handler in self._table_handlers.get(table, ()):
            handler()

    def wrote(self, table: str) -> None:
        """This process changed `table` in ways it does not track by row: drop whatever
        read it, now (its own notification follows)."""
        self.table_changed(table)
        for handler in self._row_handlers.get(table, ()):
            handler(None)

    def invalidate_all(self) -> None:
        for cache in self._caches:
            cache.drop()
        for keyed in self._keyed:
            keyed.drop_all()

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        self.invalidate_all()


async def _rows_announced(conn: psycopg.AsyncConnection[Any]) -> bool:
    cursor = await conn.execute(ROW_TRIGGERS_INSTALLED)
    row = await cursor.fetchone()
    return bool(row and row[0])


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
                caches.rows_announced = await _rows_announced(conn)
                caches.set_enabled(True)
                if failing:
                    logger.info("table change notifications back; read caches on")
                failing, retry = False, 0.5
                while True:
                    async for note in conn.notifies(timeout=PING_EVERY_SECONDS):
                        caches.heard(note.payload)
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
