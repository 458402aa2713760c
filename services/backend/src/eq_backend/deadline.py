"""Every routed request answers within its deadline: a 503 envelope once it has passed.

The handler runs in the task that received the request: a task of its own would start
only on the event loop's next round, and under load a round is every other connection's
request (~7 ms at 32 busy connections on one core), paid by every read that misses the
cache and every write. At the deadline the client gets its 503 at once, from a task of its
own, and the handler is cancelled: its unwinding can take seconds (cancelling a query on a
frozen database waits for the database; psycopg gives it up to ten), and the client does
not wait for it. Whatever the handler sends after the deadline is dropped.

The deadline is REQUEST_TIMEOUT_SECONDS; a handler that calls out names the setting
holding its outbound deadline in `opt["deadline_adds"]`, which is added on top (the call
out fails with its own 502 first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from eq_backend.envelope import ErrorEnvelope
from eq_backend.settings import Settings

logger = logging.getLogger("eq_backend.deadline")

DEADLINE_ADDS = "deadline_adds"
T = TypeVar("T")


def deadline_for(settings: Settings, opt: dict[str, Any]) -> float:
    """Seconds a handler with these options may take (0: no deadline)."""
    base = settings.request_timeout_seconds
    if base <= 0:
        return 0.0
    extra = opt.get(DEADLINE_ADDS)
    return base + (float(getattr(settings, extra)) if extra else 0.0)


def timeout_reply(seconds: float) -> tuple[Message, Message]:
    body = msgspec.json.encode(
        ErrorEnvelope(
            success=False,
            message="Request timed out",
            errors=[f"no answer within {seconds:g} s; try again later"],
            details=None,
        )
    )
    start: Message = {
        "type": "http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", b"1"),
        ],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


async def before_deadline(
    work: Awaitable[T], seconds: float, time_out: Callable[[], Awaitable[None] | None]
) -> tuple[bool, T | None]:
    """(True, result) when `work`, awaited in this task, ends within `seconds` (0: no
    deadline). Otherwise `time_out()` is called the moment the deadline passes: it returns
    the late answer (run at once in a task of its own) and `work` is cancelled, and this
    returns (False, None) once `work` has unwound; or it returns None (the answer is
    already on its way) and `work` goes on."""
    if seconds <= 0:
        return True, await work
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    cancelling = task.cancelling()
    answers: list[asyncio.Future[None]] = []

    def expire() -> None:
        answer = time_out()
        if answer is not None:
            answers.append(asyncio.ensure_future(answer))
            task.cancel()

    timer = loop.call_later(seconds, expire)
    try:
        result = await work
    except asyncio.CancelledError:
        # Ours (the deadline's) unless someone else cancelled this task too.
        if answers and task.uncancel() <= cancelling:
            await answers[0]
            return False, None
        raise
    finally:
        timer.cancel()
    if answers:  # `work` swallowed the cancellation; the 503 went out all the same
        task.uncancel()
        await answers[0]
        return False, None
    return True, result


async def send_all(send: Send, messages: Iterable[Message]) -> None:
    for message in messages:
        await send(message)


class DeadlineMiddleware:
    """Litestar middleware (one instance per route) enforcing `deadline_for`."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._seconds: dict[int, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        handler = scope["route_handler"]
        seconds = self._seconds.get(id(handler))
        if seconds is None:
            seconds = self._seconds[id(handler)] = deadline_for(self.settings, handler.opt)
        if seconds <= 0:
            await self.app(scope, receive, send)
            return
        started = expired = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if expired:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        def time_out() -> Awaitable[None] | None:
            nonlocal expired
            if started:
                return None  # its answer is already on the way: let it finish
            expired = True
            method, path = scope["method"], scope["path"]
            logger.warning("no answer within %g s on %s %s", seconds, method, path)
            return send_all(send, timeout_reply(seconds))

        await before_deadline(self.app(scope, receive, guarded_send), seconds, time_out)
