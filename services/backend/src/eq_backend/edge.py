"""The app's ASGI entry: a plain wrapper around Litestar that every HTTP request passes
through before Litestar routes it.

- Every request, routed or not (404/405 too), is observed once: Prometheus counters and one
  access line.
- A few reads are answered here without routing: GET /health from bytes encoded at
  startup, and the feed from the bytes its cache keeps (eq_backend.domain.situations.
  feed_pages). Litestar's routing, middleware and response building cost more than twice
  what uvicorn itself spends on a request here, and these are the reads probes and every
  visitor make all the time. Only requests without an `Origin` header are answered here;
  browsers' cross-origin calls take the routed handler, which adds the CORS headers. Both
  paths send the same status, headers and body (tests/backend compare them). A read the
  edge cannot answer exactly as the route would (an odd query string), or that fails (the
  database down), is routed: Litestar's error handlers answer it. One that passes the
  request deadline gets the routed handlers' 503 (eq_backend.deadline) from here.
- Situation and comment writes tell the read caches what they changed themselves, row by
  row. Other successful writes (topics, profiles) drop what reads the tables their routes
  can change, before the response starts, so whoever wrote reads their own write at once.
  A rejected write (any 4xx or 5xx) drops nothing.
- A request whose client hangs up before its body is read is marked in its scope, so the
  error handler answers it, and it is counted and logged, as 499 (nginx's "client closed
  request"), not as the 500 Litestar raises for it: a load generator stopping, or a phone
  losing its signal mid-upload, is no failure of the server.
- While the server drains after SIGTERM (eq_backend.server), every response says
  `Connection: close`: a client holding a keep-alive connection to this pod reconnects, and
  its next request reaches a pod that stays, instead of being reset when this one stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

import msgspec
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import (
    HTTPScope,
    LifeSpanReceive,
    LifeSpanScope,
    LifeSpanSend,
    Receive,
    Scope,
    Send,
)

from eq_backend.context import AppContext
from eq_backend.deadline import before_deadline, send_all, timeout_reply
from eq_backend.errors import CLIENT_GONE

logger = logging.getLogger("eq_backend.edge")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The tables each group of write routes can change, for the writes whose services do not
# report their changes row by row (topic deletion empties situations' topic_id).
TABLES_WRITTEN_BY_PATH = (
    ("/api/v1/topics", ("topics", "situations")),
    ("/api/v1/users", ("users",)),
)

# A GET answered at the edge: the response body, or None to let Litestar route it; the
# body itself when it is in memory, else an awaitable of it. Only what has to wait (for
# the database, Redis) runs under the request deadline: for an answer from memory its
# timer costs more than the rest of the request.
EdgeAnswer = bytes | Awaitable[bytes | None] | None
EdgeRead = Callable[[HTTPScope], EdgeAnswer]


def json_start(body: bytes) -> dict[str, Any]:
    """The start of a 200 JSON response, with the headers the routed handlers send."""
    return {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }


class FixedAnswer:
    """A 200 JSON response encoded once."""

    __slots__ = ("body",)

    def __init__(self, payload: Any) -> None:
        self.body = msgspec.json.encode(payload)

    def __call__(self, scope: HTTPScope) -> bytes:
        return self.body


CLOSE_CONNECTION = (b"connection", b"close")


def closing(start: Any) -> Any:
    """A response start that also asks the client to close the connection after it."""
    return {**start, "headers": [*start.get("headers", ()), CLOSE_CONNECTION]}


def _is_cross_origin(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(name == b"origin" for name, _ in headers)


def _tables_written(path: str) -> tuple[str, ...]:
    for prefix, tables in TABLES_WRITTEN_BY_PATH:
        if path.startswith(prefix):
            return tables
    return ()


class Edge:
    """Litestar behind the edge described in the module docstring. Anything else (state,
    lifespan, the OpenAPI schema) is the wrapped app's."""

    def __init__(self, app: Litestar, ctx: AppContext, reads: dict[str, EdgeRead]) -> None:
        self.app = app
        self.ctx = ctx
        self.reads = reads

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(
        self,
        asgi_scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        asgi_send: Send | LifeSpanSend,
    ) -> None:
        if asgi_scope["type"] != ScopeType.HTTP:
            await self.app(asgi_scope, receive, asgi_send)
            return
        scope = cast("HTTPScope", asgi_scope)
        send = cast("Callable[[Any], Awaitable[None]]", asgi_send)
        ctx = self.ctx
        start = time.perf_counter()
        method = scope["method"]
        path = scope["path"]
        status = 500
        template = "unmatched"
        if ctx.draining:
            send = self._closing_sender(send)
        try:
            read = self.reads.get(path) if method == "GET" else None
            if read is not None and not _is_cross_origin(scope["headers"]):
                answer = self._answer_now(read, scope)
                if answer is None or isinstance(answer, bytes):
                    body = answer
                else:
                    seconds = ctx.settings.request_timeout_seconds

                    def time_out() -> Awaitable[None]:
                        nonlocal status
                        status = 503
                        logger.warning("no answer within %g s on GET %s", seconds, path)
                        return send_all(send, timeout_reply(seconds))

                    in_time, body = await before_deadline(self._answer(answer), seconds, time_out)
                    if not in_time:
                        return
                if body is not None:
                    template = path
                    await send(json_start(body))
                    await send({"type": "http.response.body", "body": body})
                    status = 200
                    return
            tables = () if method in SAFE_METHODS else _tables_written(path)
            if method not in SAFE_METHODS:
                receive = self._watched(scope, cast("Receive", receive))

            async def observed_send(message: Any) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    if status < 400:
                        for table in tables:
                            ctx.read_caches.wrote(table)
                await send(message)

            try:
                await self.app(scope, receive, observed_send)
            finally:
                template = scope.get("path_template") or template
        finally:
            elapsed = time.perf_counter() - start
            ctx.metrics.observe(method, template, status, elapsed)
            ctx.access_log.write(method, path, status, elapsed)

    @staticmethod
    def _watched(scope: HTTPScope, receive: Receive) -> Receive:
        """`receive`, marking the scope when the client has hung up (eq_backend.errors)."""

        async def watched_receive() -> Any:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope[CLIENT_GONE] = True  # type: ignore[literal-required]
            return message

        return watched_receive

    @staticmethod
    def _closing_sender(send: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        async def closing_send(message: Any) -> None:
            await send(closing(message) if message["type"] == "http.response.start" else message)

        return closing_send

    @staticmethod
    def _answer_now(read: EdgeRead, scope: HTTPScope) -> EdgeAnswer:
        try:
            return read(scope)
        except Exception:
            return None

    @staticmethod
    async def _answer(pending: Awaitable[bytes | None]) -> bytes | None:
        try:
            return await pending
        except Exception:
            return None
