"""The hot reads' and single-statement writes' connections: a pool for one event loop.

psycopg_pool's AsyncConnectionPool guards its state with an asyncio.Lock, and holds it
across an await when it hands a returned connection to a waiting client. Once one client
waits, asyncio.Lock's fairness queues every later take and give-back behind it, one
hand-over per round of the event loop, and a round under load is every other connection's
request. Measured with the mixed benchmark (32 connections, one worker): 40% of the writes
waited 12-20 ms on that lock to take or to give back a connection. On one event loop
nothing else runs between two statements that do not await, so this pool's state needs no
lock: a connection is taken, given back or handed to the first waiter in plain code.

What it keeps of a pool's duties: at most `size` connections; a wait for one bounded by
the checkout timeout (PoolTimeout); a connection that comes back broken, mid-statement or
older than MAX_LIFETIME_SECONDS is closed instead of reused, and its place freed for the
next checkout to connect anew: while PostgreSQL refuses connections a checkout fails as
soon as its one attempt is refused, and the first one after it is back connects (no
reconnect backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus


class PoolTimeout(Exception):
    """No connection came free within the checkout timeout (answered 503)."""


# Connections are replaced after this long, as psycopg_pool does by default (a server
# backend's caches only grow).
MAX_LIFETIME_SECONDS = 3600.0


class LoopPool:
    def __init__(
        self,
        conninfo: str,
        size: int,
        timeout: float,
        kwargs: dict[str, Any],
        setup: Sequence[str] = (),
    ) -> None:
        self.conninfo = conninfo
        self.size = max(size, 1)
        self.timeout = timeout  # seconds a checkout waits for a connection
        self._kwargs = kwargs
        self._setup = setup  # statements run once on each new connection (autocommit)
        self._idle: deque[AsyncConnection[Any]] = deque()
        # Woken with a connection, or with None: a place came free, open one.
        self._waiters: deque[asyncio.Future[AsyncConnection[Any] | None]] = deque()
        self._count = 0  # connections open or being opened
        self._born: dict[int, float] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.closed = False

    async def get(self) -> AsyncConnection[Any]:
        """A connection: an idle one, a new one while there is room, else the next one
        given back within the checkout timeout; PoolTimeout after that."""
        give_up_at = time.monotonic() + self.timeout
        while True:
            if self.closed:
                raise PoolTimeout("the pool is closed")
            while self._idle:
                conn = self._idle.pop()  # the most recently used: its caches are warm
                if not conn.closed:
                    return conn
                self._forget(conn)
            if self._count < self.size:
                return await self._connect()
            given = await self._wait(give_up_at - time.monotonic())
            if given is not None:
                return given

    def put(self, conn: AsyncConnection[Any]) -> None:
        """Give a connection back: to the first waiter, else to the idle ones; closed
        instead when it is broken, mid-statement or too old."""
        healthy = (
            not self.closed
            and not conn.closed
            and conn.info.transaction_status == TransactionStatus.IDLE
            and time.monotonic() - self._born.get(id(conn), 0.0) < MAX_LIFETIME_SECONDS
        )
        if not healthy:
            self._discard(conn)
        elif not self._hand(conn):
            self._idle.append(conn)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        conn = await self.get()
        try:
            yield conn
        finally:
            self.put(conn)

    async def close(self) -> None:
        self.closed = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        idle, self._idle = list(self._idle), deque()
        for conn in idle:
            self._forget(conn)
            await conn.close()
        if self._closing:
            await asyncio.wait(self._closing, timeout=5)

    async def _connect(self) -> AsyncConnection[Any]:
        self._count += 1
        conn: AsyncConnection[Any] | None = None
        try:
            conn = await AsyncConnection.connect(self.conninfo, **self._kwargs)
            for statement in self._setup:
                await conn.execute(statement)
        except BaseException:
            self._free_place()
            if conn is not None:
                await conn.close()
            raise
        self._born[id(conn)] = time.monotonic()
        return conn

    async def _wait(self, seconds: float) -> AsyncConnection[Any] | None:
        timed_out = PoolTimeout(f"no connection free within {self.timeout:g} s")
        if seconds <= 0:
            raise timed_out
        waiter: asyncio.Future[AsyncConnection[Any] | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(seconds):
                return await waiter
        except BaseException as exc:
            # Handed a connection (or a free place) just as this wait ended: pass it on.
            if waiter.done() and not waiter.cancelled():
                given = waiter.result()
                if given is None:
                    self._hand(None)
                else:
                    self.put(given)
            else:
                waiter.cancel()  # _hand() skips it
            if isinstance(exc, TimeoutError):
                raise timed_out from None
            raise

    def _hand(self, given: AsyncConnection[Any] | None) -> bool:
        """Give the first live waiter a connection, or None (a place came free: connect);
        False when nobody waits."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(given)
                return True
        return False

    def _free_place(self) -> None:
        self._count -= 1
        self._hand(None)

    def _forget(self, conn: AsyncConnection[Any]) -> None:
        self._born.pop(id(conn), None)
        self._free_place()

    def _discard(self, conn: AsyncConnection[Any]) -> None:
        self._forget(conn)
        if not conn.closed:
            task = asyncio.get_running_loop().create_task(conn.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
