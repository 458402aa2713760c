"""Google OpenID Connect (authorization code flow) over configurable endpoints.

The ID token comes straight from the token endpoint over TLS, so its signature need not
be checked (OpenID Connect Core 3.1.3.7); its `nonce` and `aud` are.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import msgspec

from eq_backend.bounded import BoundedReply, OutboundFailure, bounded_request
from eq_backend.errors import BadGateway, Unauthorized
from eq_backend.settings import Settings

logger = logging.getLogger("eq_backend.oauth")


class GoogleIdentity(msgspec.Struct):
    sub: str
    email: str
    name: str | None
    picture: str | None
    refresh_token: str | None


def authorization_url(settings: Settings, redirect_uri: str, state: str, nonce: str) -> str:
    params = {
        "client_id": settings.google_client_id,
        "response_type": "code",
        "scope": "openid email profile",
        "redirect_uri": redirect_uri,
        "state": state,
        "nonce": nonce,
        "prompt": "consent",
        "access_type": "offline",
    }
    separator = "&" if "?" in settings.google_authorize_url else "?"
    return f"{settings.google_authorize_url}{separator}{urlencode(params)}"


def _unreachable(step: str) -> BadGateway:
    return BadGateway("Google is unreachable", errors=[f"{step}: Google did not answer"])


# Google's token and userinfo answers are a few KB.
MAX_REPLY_BYTES = 256 * 1024


async def _call(
    http: httpx.AsyncClient, method: str, url: str, step: str, deadline: float, **kwargs: Any
) -> dict[str, Any]:
    remaining = deadline - time.monotonic()
    try:
        reply = await bounded_request(
            http,
            method,
            url,
            deadline_seconds=max(remaining, 0.001),
            max_bytes=MAX_REPLY_BYTES,
            **kwargs,
        )
    except OutboundFailure as exc:
        logger.warning("google %s failed: %s", step, exc)
        raise _unreachable(step) from None
    return _json(reply, step)


def _json(response: BoundedReply, step: str) -> dict[str, Any]:
    if response.status_code >= 500:
        logger.warning("google %s answered %s", step, response.status_code)
        raise BadGateway("Google is unreachable", errors=[f"{step}: HTTP {response.status_code}"])
    if response.status_code >= 400:
        raise Unauthorized("Google rejected the login", errors=[f"{step} was rejected"])
    try:
        body = msgspec.json.decode(response.body)
    except (msgspec.DecodeError, RecursionError):
        raise BadGateway("Google answered garbage", errors=[f"{step}: not JSON"]) from None
    if not isinstance(body, dict):
        raise BadGateway("Google answered garbage", errors=[f"{step}: not an object"])
    return body


def _check_id_token(settings: Settings, id_token: Any, nonce: str) -> dict[str, Any]:
    if not isinstance(id_token, str):
        raise Unauthorized("Invalid login", errors=["no ID token from Google"])
    try:
        claims: dict[str, Any] = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise Unauthorized("Invalid login", errors=["malformed ID token"]) from None
    if claims.get("nonce") != nonce:
        raise Unauthorized("Invalid login", errors=["nonce mismatch"])
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if settings.google_client_id not in audiences:
        raise Unauthorized("Invalid login", errors=["ID token is for another client"])
    return claims


async def exchange_code(
    http: httpx.AsyncClient, settings: Settings, code: str, redirect_uri: str, nonce: str
) -> GoogleIdentity:
    """Code → tokens → userinfo. 401 when Google rejects, 502 when it is unreachable or
    both calls together take longer than GOOGLE_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + settings.google_timeout_seconds
    tokens = await _call(
        http,
        "POST",
        settings.google_token_url,
        "token exchange",
        deadline,
        data={
            "code": code,
            "client_id": settings.google_client_id,
            "client_secret": settings.google_client_secret,
            "redirect_uri": redirect_uri,
            "grant_type": "authorization_code",
        },
        headers={"Accept": "application/json"},
    )
    claims = _check_id_token(settings, tokens.get("id_token"), nonce)
    access_token = tokens.get("access_token")
    if not isinstance(access_token, str):
        raise Unauthorized("Invalid login", errors=["no access token from Google"])
    info = await _call(
        http,
        "GET",
        settings.google_userinfo_url,
        "userinfo",
        deadline,
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
    )
    email = info.get("email") or claims.get("email")
    sub = info.get("sub") or claims.get("sub")
    if not isinstance(email, str) or not email or not isinstance(sub, str):
        raise Unauthorized("Invalid login", errors=["Google returned no email"])
    if claims.get("sub") and sub != claims.get("sub"):
        raise Unauthorized("Invalid login", errors=["userinfo does not match the ID token"])
    refresh = tokens.get("refresh_token")
    name, picture = info.get("name"), info.get("picture")
    return GoogleIdentity(
        sub=sub,
        email=email,
        name=name if isinstance(name, str) else None,
        picture=picture if isinstance(picture, str) else None,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
    )
