"""Helpers for talking to the app under test: users, tokens, envelopes."""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import psycopg

SECRET_KEY = "test-secret-key-that-is-long-enough-for-hs256-0123456789"
ALGORITHM = "HS256"
# The one administrator of the app under test (ADMIN_EMAILS); written in another case to
# prove the comparison ignores case.
ADMIN_EMAIL = "Admin@EQ.test"

_seq = itertools.count(1)


@dataclass
class User:
    id: int
    email: str
    name: str
    picture: str | None
    token: str

    @property
    def cookie(self) -> dict[str, str]:
        return {"Cookie": f"access_token={self.token}"}

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def mint_token(
    email: str,
    *,
    secret: str = SECRET_KEY,
    algorithm: str = ALGORITHM,
    minutes: int = 30,
    **extra: Any,
) -> str:
    now = int(time.time())
    claims = {"sub": email, "iat": now, "exp": now + minutes * 60, **extra}
    return jwt.encode(claims, secret, algorithm=algorithm)


def create_user(conn: psycopg.Connection, name: str | None = None, **fields: Any) -> User:
    """Insert a user row directly (users only come from Google otherwise) and mint a token."""
    n = next(_seq)
    name = name or f"User {n}"
    email = fields.pop("email", f"user{n}-{time.monotonic_ns()}@example.test")
    picture = fields.pop("picture", f"https://example.test/u{n}.png")
    row = conn.execute(
        "INSERT INTO users (google_id, email, name, picture, bio) VALUES (%s, %s, %s, %s, %s) "
        "RETURNING id",
        (f"g-{n}-{time.monotonic_ns()}", email, name, picture, fields.pop("bio", None)),
    ).fetchone()
    assert row is not None
    return User(id=row[0], email=email, name=name, picture=picture, token=mint_token(email))


class Api:
    """A thin wrapper over an httpx-compatible client that adds a user's cookie or bearer."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.client = client
        # Awaited before each request: see eqtest.app.changes_heard.
        self.settle = settle

    async def request(
        self,
        method: str,
        url: str,
        *,
        user: User | None = None,
        bearer: User | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        h = dict(headers or {})
        if user is not None:
            h.update(user.cookie)
        if bearer is not None:
            h.update(bearer.bearer)
        if self.settle is not None:
            await self.settle()
        try:
            return await self.client.request(method, url, headers=h, follow_redirects=False, **kw)
        finally:
            self.client.cookies.clear()  # every test says which cookies it sends

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", url, **kw)

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("POST", url, **kw)

    async def put(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("PUT", url, **kw)

    async def delete(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kw)


def ok(resp: httpx.Response, message: str) -> Any:
    """Assert the success envelope with `message` exactly and return `data`."""
    assert resp.status_code == 200, (resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"success", "message", "data"}, body
    assert body["success"] is True
    assert body["message"] == message
    return body["data"]


def err(resp: httpx.Response, status: int) -> dict[str, Any]:
    """Assert the error envelope with `status` and return the body."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert {"success", "message", "errors", "details"} <= set(body), body
    assert body["success"] is False
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["errors"], list)
    assert all(isinstance(e, str) for e in body["errors"])
    assert body["details"] is None or isinstance(body["details"], dict)
    return body


def public_user(u: User) -> dict[str, Any]:
    return {"id": u.id, "name": u.name, "picture": u.picture}


def assert_no_email(payload: Any, *emails: str) -> None:
    """No e-mail address of `emails` appears anywhere in the serialised payload."""
    import json

    text = json.dumps(payload)
    for e in emails:
        assert e not in text, f"{e} leaked in {text[:500]}"
