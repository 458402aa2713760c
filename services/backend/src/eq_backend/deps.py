"""Dependencies shared by the controllers: the app context and the caller's identity.

The access token is read from the `access_token` cookie first, then `Authorization: Bearer`.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from sqlalchemy import bindparam, select

from eq_backend.context import AppContext
from eq_backend.db.tables import users
from eq_backend.errors import Unauthorized
from eq_backend.security import TokenError, decode_access_token

_USER_ID_BY_EMAIL = select(users.c.id).where(users.c.email == bindparam("email"))


def app_context(request: Request[Any, Any, Any]) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def read_token(request: Request[Any, Any, Any]) -> str | None:
    """The raw token from the cookie, else from a Bearer Authorization header."""
    token = request.cookies.get("access_token")
    if token:
        return token
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


async def _resolve(request: Request[Any, Any, Any], required: bool) -> int | None:
    token = read_token(request)
    if token is None:
        if required:
            raise Unauthorized("Not authenticated")
        return None
    ctx = app_context(request)
    try:
        email = decode_access_token(ctx.settings, token)
    except TokenError:
        if required:
            raise Unauthorized("Could not validate credentials") from None
        return None
    rows = await ctx.db.fetch_all(_USER_ID_BY_EMAIL, {"email": email})
    user_id = rows[0][0] if rows else None
    if user_id is None:
        if required:
            raise Unauthorized("Could not validate credentials")
        return None
    await ctx.redis.mark_active(user_id)
    return int(user_id)


async def provide_caller_id(request: Request[Any, Any, Any]) -> int:
    """The authenticated caller's user id; 401 without a valid token for a known user."""
    user_id = await _resolve(request, required=True)
    assert user_id is not None
    return user_id


async def provide_viewer_id(request: Request[Any, Any, Any]) -> int | None:
    """The caller's user id when a valid token is given, else None (never an error)."""
    return await _resolve(request, required=False)
