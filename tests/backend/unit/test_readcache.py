"""The read cache stores only what no change has overtaken, and only while it may serve."""

from __future__ import annotations

import asyncio

from eq_backend.readcache import ReadCaches


def _counting_read(value: str) -> tuple[list[int], object]:
    calls: list[int] = []

    async def read() -> str:
        calls.append(1)
        return value

    return calls, read


async def test_serves_a_stored_answer_without_reading_again() -> None:
    caches = ReadCaches()
    cache = caches.add({"topics"}, max_entries=4)
    caches.set_enabled(True)
    calls, read = _counting_read("answer")
    assert await cache.get_or_read("k", read) == "answer"  # type: ignore[arg-type]
    assert await cache.get_or_read("k", read) == "answer"  # type: ignore[arg-type]
    assert len(calls) == 1


async def test_stores_nothing_while_disabled() -> None:
    caches = ReadCaches()
    cache = caches.add({"topics"}, max_entries=4)
    calls, read = _counting_read("answer")
    for _ in range(3):
        assert await cache.get_or_read("k", read) == "answer"  # type: ignore[arg-type]
    assert len(calls) == 3
    assert len(cache) == 0


async def test_a_read_overtaken_by_a_change_is_not_stored() -> None:
    caches = ReadCaches()
    cache = caches.add({"situations", "reactions"}, max_entries=4)
    caches.set_enabled(True)
    reading, release = asyncio.Event(), asyncio.Event()

    async def slow_read() -> str:
        reading.set()
        await release.wait()
        return "old"

    task = asyncio.create_task(cache.get_or_read("k", slow_read))
    await reading.wait()
    caches.table_changed("reactions")  # committed while the read was in flight
    release.set()
    assert await task == "old"  # the caller still gets its answer...
    assert len(cache) == 0  # ...but nobody else will


async def test_a_change_drops_only_the_caches_that_read_the_table() -> None:
    caches = ReadCaches()
    topics = caches.add({"topics"}, max_entries=4)
    feed = caches.add({"situations", "users", "comments", "reactions"}, max_entries=4)
    caches.set_enabled(True)
    _, read = _counting_read("x")
    await topics.get_or_read("all", read)  # type: ignore[arg-type]
    await feed.get_or_read((1, 1), read)  # type: ignore[arg-type]
    caches.table_changed("comments")
    assert (len(topics), len(feed)) == (1, 0)
    assert caches.last_heard == "comments"
    caches.table_changed("some-marker")  # not a table anything reads: drops nothing
    assert len(topics) == 1
    caches.invalidate_all()
    assert (len(topics), len(feed)) == (0, 0)


async def test_disabling_empties_and_the_size_is_bounded() -> None:
    caches = ReadCaches()
    cache = caches.add({"situations"}, max_entries=3)
    caches.set_enabled(True)
    _, read = _counting_read("x")
    for key in range(3):
        await cache.get_or_read(key, read)  # type: ignore[arg-type]
    assert len(cache) == 3
    await cache.get_or_read(99, read)  # type: ignore[arg-type]
    assert len(cache) <= 3
    caches.set_enabled(False)
    assert len(cache) == 0
    assert not caches.enabled
