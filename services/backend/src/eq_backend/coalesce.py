"""Request coalescing for hot reads, without serving anything older than the request.

While a read for a key is running, requests for the same key that arrive meanwhile do not
join it (it may have started before a write they must see); they wait for it to finish and
then share ONE new read, which starts after all of them arrived. So every answer comes
from a database snapshot taken after its request arrived (nothing is cached between
reads), and under N concurrent identical requests the database sees about two reads
instead of N.

The shared read runs in its own task, so a cancelled request never strands the others.
Results are shared between requests: they must be treated as immutable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Slot:
    __slots__ = ("next", "running")

    def __init__(self) -> None:
        self.running: asyncio.Future[Any] | None = None  # the read in flight
        self.next: asyncio.Future[Any] | None = None  # the read that starts after it


class Coalescer(Generic[T]):
    def __init__(self) -> None:
        self._slots: dict[Hashable, _Slot] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        if slot.next is not None:
            # A read that has not started yet: it will see everything before this request.
            result: T = await asyncio.shield(slot.next)
            return result
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        previous = slot.running
        if previous is None:
            slot.running = future
        else:
            slot.next = future
        task = asyncio.create_task(self._read(key, slot, previous, future, read))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(future)

    async def _read(
        self,
        key: Hashable,
        slot: _Slot,
        previous: asyncio.Future[Any] | None,
        future: asyncio.Future[T],
        read: Callable[[], Awaitable[T]],
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
            slot.running, slot.next = future, None
        try:
            result = await read()
        except Exception as exc:  # handed to every waiter
            future.set_exception(exc)
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(result)
        finally:
            if slot.running is future:
                slot.running = None
                if slot.next is None and self._slots.get(key) is slot:
                    del self._slots[key]
            # Every waiter awaits through shield(); mark the exception as seen once.
            if future.done() and not future.cancelled():
                future.exception()
