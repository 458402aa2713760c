"""Coalesced reads never hand a request a read that started before it arrived."""

from __future__ import annotations

import asyncio

import pytest
from eq_backend.coalesce import Coalescer


async def test_concurrent_calls_share_reads_that_start_after_them() -> None:
    value = 0
    started: list[int] = []
    gate, in_flight = asyncio.Event(), asyncio.Event()

    async def read() -> int:
        seen = value  # the snapshot this read takes
        started.append(seen)
        in_flight.set()
        await gate.wait()
        return seen

    c: Coalescer[int] = Coalescer()
    first = asyncio.create_task(c.run("k", read))
    await in_flight.wait()
    value = 1  # a write that lands while the first read is in flight
    later = [asyncio.create_task(c.run("k", read)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == 0
    assert await asyncio.gather(*later) == [1] * 5  # one shared read, after the write
    assert started == [0, 1]
    assert c._slots == {}


async def test_keys_are_separate_and_errors_reach_every_waiter() -> None:
    c: Coalescer[str] = Coalescer()

    async def boom() -> str:
        await asyncio.sleep(0.01)
        raise RuntimeError("db down")

    async def fine() -> str:
        return "ok"

    tasks = [asyncio.create_task(c.run("a", boom)) for _ in range(3)]
    assert await c.run("b", fine) == "ok"
    for t in tasks:
        with pytest.raises(RuntimeError, match="db down"):
            await t
    assert await c.run("a", fine) == "ok"


async def test_a_cancelled_caller_does_not_strand_the_others() -> None:
    c: Coalescer[int] = Coalescer()
    gate = asyncio.Event()

    async def read() -> int:
        await gate.wait()
        return 7

    leader = asyncio.create_task(c.run("k", read))
    follower = asyncio.create_task(c.run("k", read))
    await asyncio.sleep(0)
    leader.cancel()
    gate.set()
    assert await follower == 7
