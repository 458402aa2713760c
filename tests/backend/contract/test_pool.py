"""The fast path's connection pool (eq_backend.db.pool) on the test PostgreSQL: reuse,
hand-over to waiters, the checkout timeout, and what it does with a connection that comes
back unusable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from eq_backend.db.pool import LoopPool, PoolTimeout
from psycopg import AsyncConnection
from sqlalchemy.engine import make_url


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[LoopPool]:
    conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    pool = LoopPool(conninfo, size=2, timeout=0.5, kwargs={"autocommit": True})
    yield pool
    await pool.close()


async def backend_pid_of(conn: AsyncConnection[Any]) -> int:
    row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
    assert row is not None
    return int(row[0])


async def backend_pid(pool: LoopPool) -> int:
    async with pool.connection() as conn:
        return await backend_pid_of(conn)


async def test_a_connection_given_back_is_the_next_one_taken(pool: LoopPool) -> None:
    assert await backend_pid(pool) == await backend_pid(pool)
    first, second = await pool.get(), await pool.get()
    assert first is not second
    pool.put(first)
    assert await pool.get() is first  # not a third connection
    pool.put(first)
    pool.put(second)


async def test_a_waiter_gets_the_first_connection_given_back(pool: LoopPool) -> None:
    held = [await pool.get(), await pool.get()]
    waiting = asyncio.create_task(pool.get())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    pool.put(held[0])
    assert await waiting is held[0]
    pool.put(held[0])
    pool.put(held[1])


async def test_no_connection_free_within_the_timeout_is_pool_timeout(pool: LoopPool) -> None:
    held = [await pool.get(), await pool.get()]
    with pytest.raises(PoolTimeout):
        await pool.get()
    for conn in held:
        pool.put(conn)
    pool.put(await pool.get())  # the timed-out waiter left nothing behind


async def test_a_connection_back_mid_transaction_is_closed_and_its_place_freed(
    pool: LoopPool,
) -> None:
    held = await pool.get()
    other = await pool.get()
    waiting = asyncio.create_task(pool.get())
    await asyncio.sleep(0.05)
    await held.execute("BEGIN")
    pool.put(held)  # not reusable as it is: closed, and the waiter connects anew
    fresh = await waiting
    assert fresh is not held
    assert (await (await fresh.execute("SELECT 1")).fetchone()) == (1,)
    await asyncio.sleep(0.05)
    assert held.closed
    pool.put(fresh)
    pool.put(other)


async def test_a_broken_connection_is_not_reused(pool: LoopPool) -> None:
    conn = await pool.get()
    victim = await backend_pid_of(conn)
    async with pool.connection() as killer:
        await killer.execute("SELECT pg_terminate_backend(%s)", (victim,))
    with pytest.raises(psycopg.OperationalError):
        await conn.execute("SELECT 1")
    pool.put(conn)
    assert await backend_pid(pool) != victim


async def test_a_waiter_cancelled_as_a_connection_reaches_it_gives_it_back(
    pool: LoopPool,
) -> None:
    held = [await pool.get(), await pool.get()]
    waiting = asyncio.create_task(pool.get())
    await asyncio.sleep(0.05)
    pool.put(held[0])  # handed to the waiter, which is cancelled before it runs
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await pool.get() is held[0]
    pool.put(held[0])
    pool.put(held[1])
