"""The app's ASGI entry: what every HTTP request passes through before Litestar routes it.

- Every request, routed or not (404/405 too), is observed once: Prometheus counters and one
  access line.
- A few answers that never change while the process runs (GET /health) are sent from bytes
  encoded at startup. Litestar's routing, middleware and response building cost more than
  twice what uvicorn itself spends on a request here, and liveness probes and load
  balancers call /health all the time. Only requests without an `Origin` header are
  answered here; browsers' cross-origin calls take the routed handler, which adds the CORS
  headers. Both paths send the same status, headers and body (tests/backend compare them).
- When a request with an unsafe method (a write) starts its response, the process's
  cached reads are dropped, so a client that wrote and then reads sees its write even
  before PostgreSQL's change notification arrives (eq_backend.readcache).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
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

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class FixedAnswer:
    """A 200 JSON response encoded once."""

    __slots__ = ("body", "start")

    def __init__(self, payload: Any) -> None:
        self.body = {"type": "http.response.body", "body": msgspec.json.encode(payload)}
        self.start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(self.body["body"])).encode()),
            ],
        }

    async def send(self, send: Send) -> None:
        await send(self.start)  # type: ignore[arg-type]
        await send(self.body)  # type: ignore[arg-type]


def _is_cross_origin(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(name == b"origin" for name, _ in headers)


class EQLitestar(Litestar):
    """Litestar behind the edge described in the module docstring."""

    def __init__(self, *, fixed_answers: dict[str, FixedAnswer], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fixed_answers = fixed_answers
        self._ctx: AppContext = self.state.ctx  # read once: State is a mapping with __getattr__

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        if scope["type"] != ScopeType.HTTP:
            await super().__call__(scope, receive, send)
            return
        http_scope = cast("HTTPScope", scope)
        ctx: AppContext = self._ctx
        start = time.perf_counter()
        method = http_scope["method"]
        status = 500
        template = "unmatched"
        try:
            answer = self.fixed_answers.get(http_scope["path"]) if method == "GET" else None
            if answer is not None and not _is_cross_origin(http_scope["headers"]):
                template = http_scope["path"]
                await answer.send(cast("Send", send))
                status = 200
                return

            writes = method not in SAFE_METHODS

            async def observed_send(message: Any) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    if writes:
                        ctx.read_caches.invalidate_all()
                await send(message)

            try:
                await super().__call__(http_scope, receive, observed_send)
            finally:
                template = http_scope.get("path_template") or template
                if writes:  # also when no response was sent (client gone, crash)
                    ctx.read_caches.invalidate_all()
        finally:
            elapsed = time.perf_counter() - start
            ctx.metrics.observe(method, template, status, elapsed)
            ctx.access_log.write(method, http_scope["path"], status, elapsed)
