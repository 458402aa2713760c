"""The auth cookie's Secure attribute follows COOKIE_SECURE, and logout deletes the cookie
with the attributes it was set with (CONTRACT.md, deliberate difference 16): a browser
ignores a Secure deletion over plain HTTP, which left users signed in on a dev host."""

from __future__ import annotations

import time
from typing import Any

import pytest
from eqtest.api import Api, ok
from eqtest.app import make_settings
from eqtest.fakes import FakeOidcProvider, OidcUser

from contract.test_auth import _cookie_attrs, _login, _set_cookies


def _without_value(raw: str) -> dict[str, str]:
    """A Set-Cookie header's attributes that must match between setting and deleting."""
    attrs = _cookie_attrs(raw)
    attrs.pop("max-age", None)
    attrs.pop("expires", None)
    return attrs


async def _signed_in_and_out(api: Api, oidc: FakeOidcProvider) -> tuple[str, str]:
    who = OidcUser(f"sub-{time.time_ns()}", f"c{time.time_ns()}@example.test", "Cookie Person")
    login = await _login(api, oidc, who)
    assert login.status_code == 307, login.text
    logout = await api.post("/api/v1/auth/logout")
    assert ok(logout, "Logged out successfully") is None
    return _set_cookies(login)["access_token"], _set_cookies(logout)["access_token"]


@pytest.mark.parametrize(("setting", "secure"), [("true", True), ("false", False)])
async def test_the_cookie_and_its_deletion_carry_the_same_attributes(
    app_env: dict[str, str],
    app_client_factory: Any,
    oidc: FakeOidcProvider,
    setting: str,
    secure: bool,
) -> None:
    async with app_client_factory({**app_env, "COOKIE_SECURE": setting}) as api:
        set_raw, deleted_raw = await _signed_in_and_out(api, oidc)
    assert ("secure" in _cookie_attrs(set_raw)) is secure
    assert _without_value(deleted_raw) == _without_value(set_raw)
    assert _cookie_attrs(deleted_raw)["max-age"] == "0"
    assert deleted_raw.startswith(('access_token=""', "access_token=;"))
    assert {"httponly", "path", "samesite"} <= _cookie_attrs(set_raw).keys()


@pytest.mark.parametrize(
    ("environment", "secure"),
    [("production", True), ("staging", False), ("test", False), ("dev", False)],
)
def test_secure_is_on_by_default_in_production_only(environment: str, secure: bool) -> None:
    env = {
        "ENVIRONMENT": environment,
        "DATABASE_URL": "postgresql://db.example/eq",
        "REDIS_URL": "redis://redis.example/0",
        "SECRET_KEY": "k" * 40,
        "PUBLIC_BASE_URL": "https://api.example",
    }
    assert make_settings(env).cookie_secure is secure
    assert make_settings({**env, "COOKIE_SECURE": "on"}).cookie_secure is True
    assert make_settings({**env, "COOKIE_SECURE": "off"}).cookie_secure is False
