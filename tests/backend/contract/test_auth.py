"""Google login over real HTTP against a local OpenID provider, the JWT and logout."""

import base64
import binascii
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from eq_cluster.services import free_port
from eqtest.api import ALGORITHM, SECRET_KEY, Api, create_user, err, mint_token, ok
from eqtest.fakes import FakeOidcProvider, OidcUser

BASE = "http://testserver.local"


def _set_cookies(resp: httpx.Response) -> dict[str, str]:
    """Every Set-Cookie header of the response, by cookie name (raw header value)."""
    out = {}
    for raw in resp.headers.get_list("set-cookie"):
        name = raw.split("=", 1)[0].strip()
        out[name] = raw
    return out


def _cookie_attrs(raw: str) -> dict[str, str]:
    parts = [p.strip() for p in raw.split(";")]
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip()
    return attrs


def _cookie_header(set_cookies: dict[str, str]) -> str:
    jar = SimpleCookie()
    for raw in set_cookies.values():
        jar.load(raw)
    return "; ".join(f"{k}={m.value}" for k, m in jar.items())


async def _login(api: Api, oidc: FakeOidcProvider, user: OidcUser) -> httpx.Response:
    """Run the whole browser dance; return the app's answer to the callback."""
    oidc.next_user = user
    start = await api.get("/api/v1/auth/login/google")
    assert start.status_code == 302, start.text
    location = start.headers["location"]
    assert location.startswith(oidc.authorize_url)
    async with httpx.AsyncClient() as browser:
        back = await browser.get(location, follow_redirects=False)
    assert back.status_code == 302
    cb = urlsplit(back.headers["location"])
    cookie = _cookie_header(_set_cookies(start))
    headers = {"Cookie": cookie} if cookie else {}
    return await api.get(f"{cb.path}?{cb.query}", headers=headers)


@pytest.fixture(autouse=True)
def _clean_jar(api: Api):
    api.client.cookies.clear()
    yield
    api.client.cookies.clear()


async def test_login_redirects_to_the_authorize_endpoint(api: Api, oidc: FakeOidcProvider) -> None:
    resp = await api.get("/api/v1/auth/login/google")
    assert resp.status_code == 302
    url = urlsplit(resp.headers["location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == oidc.authorize_url
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert q["response_type"] == "code"
    assert q["scope"] == "openid email profile"
    assert q["prompt"] == "consent"
    assert q["client_id"] == oidc.client_id
    assert q["state"]
    assert q["nonce"]
    assert q["redirect_uri"].endswith("/api/v1/auth/callback/google")
    again = await api.get("/api/v1/auth/login/google")
    q2 = parse_qs(urlsplit(again.headers["location"]).query)
    assert q2["state"][0] != q["state"], "state must not be reused"


async def test_callback_creates_the_user_and_sets_the_cookie(
    api: Api, oidc: FakeOidcProvider, db
) -> None:
    who = OidcUser(f"sub-{time.time_ns()}", f"new{time.time_ns()}@example.test", "New Person")
    resp = await _login(api, oidc, who)
    assert resp.status_code == 307, resp.text
    assert resp.headers["location"] == "http://frontend.test/"
    raw = _set_cookies(resp)["access_token"]
    attrs = _cookie_attrs(raw)
    assert "httponly" in attrs
    assert attrs.get("path") == "/"
    assert attrs.get("samesite", "").lower() == "lax"
    assert "secure" in attrs
    token = raw.split(";", 1)[0].split("=", 1)[1].strip('"')
    header = jwt.get_unverified_header(token)
    assert header["alg"] == ALGORITHM
    claims = jwt.decode(token, SECRET_KEY, algorithms=[ALGORITHM])
    assert claims["sub"] == who.email
    now = time.time()
    assert abs(claims["exp"] - (now + 30 * 60)) < 120
    assert abs(claims["iat"] - now) < 120

    row = db.execute(
        "SELECT id, google_id, name, picture FROM users WHERE email = %s", (who.email,)
    ).fetchone()
    assert row is not None
    assert row[1:] == (who.sub, who.name, who.picture)

    me = ok(
        await api.get("/api/v1/users/me", headers={"Cookie": f"access_token={token}"}),
        "Current user retrieved successfully",
    )
    assert me == {"id": row[0], "email": who.email, "name": who.name, "picture": who.picture}


async def test_callback_updates_an_existing_user_by_email(
    api: Api, oidc: FakeOidcProvider, db
) -> None:
    existing = create_user(db, name="Old Name", picture="https://example.test/old.png")
    who = OidcUser("another-sub", existing.email, "New Name", "https://example.test/new.png")
    resp = await _login(api, oidc, who)
    assert resp.status_code == 307, resp.text
    rows = db.execute(
        "SELECT id, name, picture FROM users WHERE email = %s", (existing.email,)
    ).fetchall()
    assert rows == [(existing.id, "New Name", "https://example.test/new.png")]


async def test_refresh_token_is_encrypted_at_rest(api: Api, oidc: FakeOidcProvider, db) -> None:
    secret = f"refresh-{time.time_ns()}-plaintext"
    oidc.refresh_token = secret
    try:
        who = OidcUser(f"sub-r{time.time_ns()}", f"r{time.time_ns()}@example.test", "Refresh")
        resp = await _login(api, oidc, who)
    finally:
        oidc.refresh_token = "google-refresh-token-1"
    assert resp.status_code == 307, resp.text
    (stored,) = db.execute(
        "SELECT encrypted_refresh_token FROM users WHERE email = %s", (who.email,)
    ).fetchone()
    assert stored
    assert secret not in stored
    # not merely signed or encoded: no base64 segment of it decodes to the plaintext
    for chunk in stored.replace("-", "+").replace("_", "/").split("."):
        try:
            decoded = base64.b64decode(chunk + "=" * (-len(chunk) % 4))
        except (binascii.Error, ValueError):
            continue
        assert secret.encode() not in decoded


async def test_callback_with_a_bad_code_is_401(api: Api, oidc: FakeOidcProvider) -> None:
    start = await api.get("/api/v1/auth/login/google")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    cookie = _cookie_header(_set_cookies(start))
    resp = await api.get(
        "/api/v1/auth/callback/google",
        params={"code": "never-issued", "state": state},
        headers={"Cookie": cookie} if cookie else {},
    )
    err(resp, 401)
    raw = _set_cookies(resp).get("access_token", "access_token=")
    assert raw.split(";", 1)[0].split("=", 1)[1].strip('"') == "", "a token was issued"


async def test_callback_with_a_forged_state_is_401(api: Api, oidc: FakeOidcProvider) -> None:
    start = await api.get("/api/v1/auth/login/google")
    cookie = _cookie_header(_set_cookies(start))
    code = oidc.issue_code(OidcUser("s", "forged@example.test", "Forged"))
    resp = await api.get(
        "/api/v1/auth/callback/google",
        params={"code": code, "state": "forged-state"},
        headers={"Cookie": cookie} if cookie else {},
    )
    err(resp, 401)


async def test_callback_without_code_or_state_is_rejected(api: Api) -> None:
    resp = await api.get("/api/v1/auth/callback/google")
    assert resp.status_code in (400, 401, 422)
    err(resp, resp.status_code)


async def test_callback_with_google_unreachable_is_502(
    api: Api, app_env, app_client_factory
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/token"
    env = {**app_env, "GOOGLE_TOKEN_URL": dead}
    async with app_client_factory(env) as other_api:
        start = await other_api.get("/api/v1/auth/login/google")
        q = parse_qs(urlsplit(start.headers["location"]).query)
        cookie = _cookie_header(_set_cookies(start))
        resp = await other_api.get(
            "/api/v1/auth/callback/google",
            params={"code": "whatever", "state": q["state"][0]},
            headers={"Cookie": cookie} if cookie else {},
        )
    err(resp, 502)


async def test_logout_deletes_the_cookie(api: Api) -> None:
    resp = await api.post("/api/v1/auth/logout")
    assert ok(resp, "Logged out successfully") is None
    raw = _set_cookies(resp)["access_token"]
    attrs = _cookie_attrs(raw)
    assert attrs.get("max-age") == "0"
    assert attrs.get("path") == "/"
    assert attrs.get("samesite", "").lower() == "lax"
    assert "secure" in attrs


async def test_bearer_header_is_accepted(api: Api, user) -> None:
    data = ok(await api.get("/api/v1/users/me", bearer=user), "Current user retrieved successfully")
    assert data["id"] == user.id


async def test_cookie_is_read_before_the_bearer_header(api: Api, user, other) -> None:
    resp = await api.get(
        "/api/v1/users/me",
        headers={"Cookie": f"access_token={user.token}", "Authorization": f"Bearer {other.token}"},
    )
    assert ok(resp, "Current user retrieved successfully")["id"] == user.id


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda e: mint_token(e, algorithm="HS512"), id="other-hmac-alg"),
        pytest.param(lambda e: mint_token(e, algorithm="HS384"), id="hs384"),
        pytest.param(
            lambda e: jwt.encode({"sub": e, "exp": int(time.time()) + 600}, None, algorithm="none"),
            id="alg-none",
        ),
        pytest.param(lambda e: mint_token(e, secret="x" * 64), id="wrong-secret"),
        pytest.param(lambda e: mint_token(e, minutes=-5), id="expired"),
        pytest.param(lambda e: mint_token("nobody-" + e), id="unknown-user"),
        pytest.param(lambda e: "not.a.jwt", id="garbage"),
        pytest.param(
            lambda e: jwt.encode({"exp": int(time.time()) + 600}, SECRET_KEY, algorithm="HS256"),
            id="no-sub",
        ),
    ],
)
async def test_only_valid_tokens_of_the_configured_algorithm_are_accepted(
    api: Api, user, make_token
) -> None:
    token = make_token(user.email)
    for headers in ({"Cookie": f"access_token={token}"}, {"Authorization": f"Bearer {token}"}):
        err(await api.get("/api/v1/users/me", headers=headers), 401)


async def test_no_token_is_401(api: Api) -> None:
    body = err(await api.get("/api/v1/users/me"), 401)
    assert body["errors"]


async def test_frontend_url_defaults_to_the_dev_server(
    app_env, app_client_factory, oidc: FakeOidcProvider
) -> None:
    """Deliberate difference 12: FRONTEND_URL defaults to http://localhost:3000/."""
    env = {k: v for k, v in app_env.items() if k != "FRONTEND_URL"}
    who = OidcUser(f"sub-d{time.time_ns()}", f"d{time.time_ns()}@example.test", "Default")
    async with app_client_factory(env) as other_api:
        resp = await _login(other_api, oidc, who)
    assert resp.status_code == 307, resp.text
    assert resp.headers["location"] == "http://localhost:3000/"


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ("token_500", 502),
        ("token_garbage", 502),
        ("userinfo_garbage", 502),
        ("no_id_token", 401),
        ("wrong_nonce", 401),
        ("wrong_aud", 401),
        ("no_access_token", 401),
        ("sub_mismatch", 401),
    ],
)
async def test_callback_failure_modes_of_the_provider(
    api: Api, oidc: FakeOidcProvider, db, fault, status
) -> None:
    who = OidcUser(f"sub-f{time.time_ns()}", f"f{time.time_ns()}@example.test", "Faulty")
    oidc.fault = fault
    try:
        resp = await _login(api, oidc, who)
    finally:
        oidc.fault = None
    err(resp, status)
    (n,) = db.execute("SELECT count(*) FROM users WHERE email = %s", (who.email,)).fetchone()
    assert n == 0


async def test_userinfo_server_error_is_502(api: Api, oidc: FakeOidcProvider) -> None:
    oidc.userinfo_status = 500
    try:
        resp = await _login(api, oidc, OidcUser("s-500", "u500@example.test", "U"))
    finally:
        oidc.userinfo_status = 200
    err(resp, 502)
