"""Per-user rate limits on writes: situations, comments and reactions (429 + Retry-After).

Applied as a route guard (`guards=[limit_writes("comments")]`). Counted in Redis per
user, per kind of write and per fixed window of WRITE_RATE_LIMIT; when Redis is down every
write is allowed, as the rest of the API keeps serving then too.
"""

from __future__ import annotations

from typing import Any, cast

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.types import Guard

from eq_backend.deps import app_context, provide_caller_id
from eq_backend.errors import TooManyRequests


def limit_writes(kind: str) -> Guard:
    """A guard counting the caller's writes of `kind` (401 first without a valid token)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        request = cast("Request[Any, Any, Any]", connection)
        user_id = await provide_caller_id(request)
        ctx = app_context(request)
        limit, window = ctx.settings.write_rate
        allowed, retry_after = await ctx.redis.hit(f"write:{kind}:{user_id}", limit, window)
        if not allowed:
            raise TooManyRequests(
                "Too many requests",
                errors=[
                    f"at most {ctx.settings.write_rate_limit} {kind} per user; "
                    f"retry in {retry_after} s"
                ],
                headers={"Retry-After": str(retry_after)},
            )

    return guard
