"""/api/v1/auth: Google login, its callback, and logout."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromQuery, QueryParameter
from litestar.response import Redirect

from eq_backend.deadline import DEADLINE_ADDS
from eq_backend.deps import app_context
from eq_backend.domain.auth.google import authorization_url, exchange_code
from eq_backend.envelope import Envelope, ok
from eq_backend.errors import ServiceUnavailable, Unauthorized
from eq_backend.security import (
    TokenError,
    create_access_token,
    encrypt_secret,
    sign_payload,
    verify_payload,
)
from eq_backend.services import services
from eq_backend.settings import Settings

STATE_COOKIE = "oauth_state"
STATE_TTL_SECONDS = 600
CALLBACK_PATH = "/api/v1/auth/callback/google"


def _callback_url(request: Request[Any, Any, Any]) -> str:
    base = app_context(request).settings.public_base_url
    if not base:
        base = str(request.base_url)
    return base.rstrip("/") + CALLBACK_PATH


def _is_https(request: Request[Any, Any, Any]) -> bool:
    return _callback_url(request).startswith("https://")


def access_cookie(settings: Settings, token: str) -> Cookie:
    """`access_token=<jwt>; HttpOnly; Path=/; SameSite=lax` (a session cookie), `Secure`
    when COOKIE_SECURE is on. An empty token gives the cookie that deletes it: a browser
    only replaces a cookie with one of the same attributes (a Secure deletion sent over
    plain HTTP is ignored)."""
    return Cookie(
        key="access_token",
        value=token,
        path="/",
        max_age=None if token else 0,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
    )


def state_cookie(request: Request[Any, Any, Any], signed: str) -> Cookie:
    """The login's state and nonce, signed; an empty value deletes it (same attributes)."""
    return Cookie(
        key=STATE_COOKIE,
        value=signed,
        path="/api/v1/auth",
        max_age=STATE_TTL_SECONDS if signed else 0,
        httponly=True,
        # Secure only over https, so a plain-http local setup can log in too.
        secure=_is_https(request),
        samesite="lax",
    )


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]  # noqa: RUF012

    @get("/login/google", status_code=302, sync_to_thread=False)
    def login(self, request: Request[Any, Any, Any]) -> Redirect:
        """Redirect to Google with state and nonce, remembered in a signed cookie."""
        settings = app_context(request).settings
        if not settings.google_client_id or not settings.google_client_secret:
            raise ServiceUnavailable(
                "Google login is not configured",
                errors=["GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET are not set"],
            )
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        target = authorization_url(settings, _callback_url(request), state, nonce)
        signed = sign_payload(settings, {"state": state, "nonce": nonce}, STATE_TTL_SECONDS)
        return Redirect(
            target,
            status_code=302,
            cookies=[state_cookie(request, signed)],
        )

    @get("/callback/google", status_code=307, opt={DEADLINE_ADDS: "google_timeout_seconds"})
    async def callback(
        self,
        request: Request[Any, Any, Any],
        code: FromQuery[str | None] = None,
        # `state` is a reserved name in Litestar handlers: read the query key explicitly.
        returned_state: Annotated[str | None, QueryParameter(name="state")] = None,
        error: FromQuery[str | None] = None,
    ) -> Redirect:
        """Verify state and nonce, exchange the code, upsert the user by email, set the
        access cookie and send the browser to FRONTEND_URL."""
        ctx = app_context(request)
        settings = ctx.settings
        if error:
            raise Unauthorized("Google login failed", errors=[f"Google said: {error}"])
        state = returned_state
        if not code or not state:
            raise Unauthorized("Invalid login", errors=["missing code or state"])
        cookie = request.cookies.get(STATE_COOKIE)
        if not cookie:
            raise Unauthorized("Invalid login", errors=["login state cookie missing or expired"])
        try:
            remembered = verify_payload(settings, cookie)
        except TokenError:
            raise Unauthorized("Invalid login", errors=["login state is invalid"]) from None
        if not secrets.compare_digest(str(remembered.get("state", "")), state):
            raise Unauthorized("Invalid login", errors=["state mismatch"])
        nonce = str(remembered.get("nonce", ""))
        identity = await exchange_code(
            ctx.http.client, settings, code, _callback_url(request), nonce
        )
        await services(request).users.upsert_google_user(
            google_id=identity.sub,
            email=identity.email,
            name=identity.name,
            picture=identity.picture,
            encrypted_refresh_token=encrypt_secret(settings, identity.refresh_token)
            if identity.refresh_token
            else None,
        )
        token = create_access_token(settings, identity.email)
        return Redirect(
            settings.frontend_url,
            status_code=307,
            cookies=[access_cookie(settings, token), state_cookie(request, "")],
        )

    @post("/logout", status_code=200, sync_to_thread=False)
    def logout(self, request: Request[Any, Any, Any]) -> Response[Envelope[None]]:
        settings = app_context(request).settings
        return Response(ok("Logged out successfully", None), cookies=[access_cookie(settings, "")])
