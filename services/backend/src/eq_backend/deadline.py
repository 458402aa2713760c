"""Every routed request answers within its deadline: a 503 envelope once it has passed.

The handler runs as a task of its own. At the deadline the client gets its answer and the
task is cancelled without being waited for: cancelling a query on a frozen database waits
for the database (psycopg gives it seconds), and the client must not. Whatever the task
sends after that is dropped.

The deadline is REQUEST_TIMEOUT_SECONDS; a handler that calls out names the setting
holding its outbound deadline in `opt["deadline_adds"]`, which is added on top (the call
out fails with its own 502 first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
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


def retrieve_late(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.info("request after its deadline ended with %s", type(task.exception()).__name__)


async def before_deadline(awaitable: Awaitable[T], seconds: float) -> tuple[bool, T | None]:
    """(True, result) when `awaitable` ends within `seconds` (0: no deadline), else
    (False, None) at once: the work is cancelled without being waited for (see above)."""
    if seconds <= 0:
        return True, await awaitable
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if done:
        return True, task.result()
    task.add_done_callback(retrieve_late)
    task.cancel()
    return False, None


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

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        try:
            done, _ = await asyncio.wait({task}, timeout=seconds)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if done or started:
            await task  # finished, or its answer is already on the way
            return
        expired = True
        task.add_done_callback(retrieve_late)
        task.cancel()
        logger.warning("no answer within %g s on %s %s", seconds, scope["method"], scope["path"])
        for message in timeout_reply(seconds):
            await send(message)
