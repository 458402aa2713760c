"""The fast path's connection pool (eq_backend.db.pool) on the test PostgreSQL: reuse,
hand-over to waiters, the checkout timeout, what it does with a connection that comes
back unusable, and the set-up every connection gets (the feed on a generic plan)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from eq_backend.db.engine import FastReader
from eq_backend.db.pool import LoopPool, PoolTimeout
from eq_backend.domain.situations.feed import pg_feed_page_statement
from psycopg import AsyncConnection
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine


def conninfo_of(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[LoopPool]:
    pool = LoopPool(conninfo_of(database_url), size=2, timeout=0.5, kwargs={"autocommit": True})
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


async def test_a_connection_whose_set_up_fails_is_closed_and_its_place_freed(
    database_url: str,
) -> None:
    pool = LoopPool(conninfo_of(database_url), 1, 0.5, {"autocommit": True}, setup=("SELECT 1/0",))
    for _ in range(2):  # the second attempt has the place the first one gave back
        with pytest.raises(psycopg.errors.DivisionByZero):
            await pool.get()
    await pool.close()


async def test_the_fast_path_runs_the_feed_page_on_a_generic_plan(database_url: str) -> None:
    """psycopg prepares a statement on its fifth run; PostgreSQL's default would then keep
    planning the feed page anew on every run (eq_backend.db.engine.FastReader)."""
    engine = create_async_engine(database_url)
    reader = FastReader(engine, max_size=1, checkout_timeout=1.0, options={})
    await reader.open()
    try:
        statement = pg_feed_page_statement(False, True)
        for page in range(8):
            await reader.all(statement, {"limit": 10, "offset": 10 * (page % 3), "viewer_id": 1})
        async with reader.pool.connection() as conn:
            plans = await (
                await conn.execute(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                    "WHERE statement LIKE '%situation_stats%'"
                )
            ).fetchall()
    finally:
        await reader.close()
        await engine.dispose()
    assert len(plans) == 1, plans
    generic, custom = plans[0]
    assert custom == 0, plans
    assert generic >= 3, plans
