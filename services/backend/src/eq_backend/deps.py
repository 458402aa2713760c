"""Dependencies shared by the controllers: the app context and the caller's identity.

The access token is read from the `access_token` cookie first, then `Authorization: Bearer`.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
from litestar import Request
from sqlalchemy import bindparam, select

from eq_backend.context import AppContext
from eq_backend.db.tables import users
from eq_backend.errors import Unauthorized
from eq_backend.security import TokenError, decode_access_token

_USER_ID_BY_EMAIL = select(users.c.id).where(users.c.email == bindparam("email"))

# Per-process memo of the two steps every authenticated request repeats.
# - A token string always decodes to the same claims, so a verified token is remembered
#   with its `exp`, which is checked again on every use (an expired token is rejected as
#   PyJWT would). Keyed by secret and algorithm too, so a key change invalidates it.
# - A user's email never changes and users are never deleted by the app, so email → id
#   is remembered for USER_ID_TTL_SECONDS (bounds staleness if a row is removed by hand).
# Both are bounded: cleared wholesale when full (no LRU bookkeeping on the hot path).
_MAX_ENTRIES = 10_000
USER_ID_TTL_SECONDS = 30.0
_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}


def _token_subject(settings: Any, token: str) -> str:
    key = (settings.secret_key, settings.algorithm, token)
    hit = _tokens.get(key)
    if hit is not None:
        if hit[1] > time.time():
            return hit[0]
        del _tokens[key]
    email = decode_access_token(settings, token)
    exp = _token_exp(token)
    if exp is not None:
        if len(_tokens) >= _MAX_ENTRIES:
            _tokens.clear()
        _tokens[key] = (email, exp)
    return email


def _token_exp(token: str) -> float | None:
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return float(exp) if isinstance(exp, int | float) else None


def _remembered_user_id(ctx: AppContext, email: str) -> int | None:
    hit = ctx.user_ids.get(email)  # per app, so per database
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    return None


async def _user_id(ctx: AppContext, email: str) -> int | None:
    remembered = _remembered_user_id(ctx, email)
    if remembered is not None:
        return remembered
    memo = ctx.user_ids
    now = time.monotonic()
    rows = await ctx.db.fetch_all(_USER_ID_BY_EMAIL, {"email": email})
    if not rows:
        memo.pop(email, None)
        return None
    user_id = int(rows[0][0])
    if len(memo) >= _MAX_ENTRIES:
        memo.clear()
    memo[email] = (user_id, now + USER_ID_TTL_SECONDS)
    return user_id


def app_context(request: Request[Any, Any, Any]) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def read_token(request: Request[Any, Any, Any]) -> str | None:
    """The raw token from the cookie, else from a Bearer Authorization header."""
    return token_from(request.cookies.get("access_token"), request.headers.get("authorization"))


def token_from(cookie_token: str | None, authorization: str | None) -> str | None:
    """The `access_token` cookie's value, else a Bearer Authorization header's token."""
    if cookie_token:
        return cookie_token
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


async def user_for_token(ctx: AppContext, token: str | None, required: bool) -> int | None:
    """The token's user id (and the user marked active); when the token is missing, invalid
    or names no user: 401 if `required`, else None."""
    if token is None:
        if required:
            raise Unauthorized("Not authenticated")
        return None
    try:
        email = _token_subject(ctx.settings, token)
    except TokenError:
        if required:
            raise Unauthorized("Could not validate credentials") from None
        return None
    user_id = await _user_id(ctx, email)
    if user_id is None:
        if required:
            raise Unauthorized("Could not validate credentials")
        return None
    await ctx.redis.mark_active(user_id)
    return int(user_id)


def remembered_viewer(ctx: AppContext, token: str | None) -> tuple[bool, int | None]:
    """`user_for_token(ctx, token, required=False)` when it would need neither the
    database nor Redis: (True, its answer); else (False, None), and the caller awaits
    `user_for_token` instead."""
    if token is None:
        return True, None
    try:
        email = _token_subject(ctx.settings, token)
    except TokenError:
        return True, None
    user_id = _remembered_user_id(ctx, email)
    if user_id is None or not ctx.redis.marked_recently(user_id):
        return False, None
    return True, user_id


async def _resolve(request: Request[Any, Any, Any], required: bool) -> int | None:
    return await user_for_token(app_context(request), read_token(request), required)


async def provide_caller_id(request: Request[Any, Any, Any]) -> int:
    """The authenticated caller's user id; 401 without a valid token for a known user."""
    user_id = await _resolve(request, required=True)
    assert user_id is not None
    return user_id


async def provide_viewer_id(request: Request[Any, Any, Any]) -> int | None:
    """The caller's user id when a valid token is given, else None (never an error)."""
    return await _resolve(request, required=False)
