"""Google OpenID Connect (authorization code flow) over configurable endpoints.

The ID token comes straight from the token endpoint over TLS, so its signature need not
be checked (OpenID Connect Core 3.1.3.7); its `nonce` and `aud` are.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import msgspec

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


async def _json(response: httpx.Response, step: str) -> dict[str, Any]:
    if response.status_code >= 500:
        logger.warning("google %s answered %s", step, response.status_code)
        raise BadGateway("Google is unreachable", errors=[f"{step}: HTTP {response.status_code}"])
    if response.status_code >= 400:
        raise Unauthorized("Google rejected the login", errors=[f"{step} was rejected"])
    try:
        body = response.json()
    except ValueError:
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
    """Code → tokens → userinfo. 401 when Google rejects, 502 when it is unreachable."""
    try:
        token_response = await http.post(
            settings.google_token_url,
            data={
                "code": code,
                "client_id": settings.google_client_id,
                "client_secret": settings.google_client_secret,
                "redirect_uri": redirect_uri,
                "grant_type": "authorization_code",
            },
            headers={"Accept": "application/json"},
            timeout=10.0,
        )
    except httpx.HTTPError:
        raise _unreachable("token exchange") from None
    tokens = await _json(token_response, "token exchange")
    claims = _check_id_token(settings, tokens.get("id_token"), nonce)
    access_token = tokens.get("access_token")
    if not isinstance(access_token, str):
        raise Unauthorized("Invalid login", errors=["no access token from Google"])
    try:
        info_response = await http.get(
            settings.google_userinfo_url,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=10.0,
        )
    except httpx.HTTPError:
        raise _unreachable("userinfo") from None
    info = await _json(info_response, "userinfo")
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
