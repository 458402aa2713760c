"""CORS: the configured origins, with credentials; the four local frontend origins too,
in dev only."""

import pytest
from eqtest.api import Api

ALLOWED = ["http://frontend.test"]  # from CORS_ORIGINS
LOCAL = [
    "http://localhost:3000",
    "http://localhost:3001",
    "http://127.0.0.1:3000",
    "http://127.0.0.1:3001",
]


@pytest.mark.parametrize("origin", ALLOWED)
async def test_preflight_from_an_allowed_origin(api: Api, origin: str) -> None:
    resp = await api.request(
        "OPTIONS",
        "/api/v1/situations/contribute",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert resp.status_code in (200, 204), resp.text
    assert resp.headers["access-control-allow-origin"] == origin
    assert resp.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize("origin", ALLOWED)
async def test_simple_request_from_an_allowed_origin(api: Api, origin: str) -> None:
    resp = await api.get("/api/v1/topics", headers={"Origin": origin})
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == origin
    assert resp.headers["access-control-allow-credentials"] == "true"


async def test_other_origins_get_no_cors_grant(api: Api) -> None:
    resp = await api.get("/api/v1/topics", headers={"Origin": "http://evil.test"})
    assert resp.headers.get("access-control-allow-origin") in (None, "")


@pytest.mark.parametrize("origin", LOCAL)
async def test_local_origins_get_no_grant_outside_dev(api: Api, origin: str) -> None:
    """Finding 7: local origins were credentialed CORS origins also in production."""
    resp = await api.get("/api/v1/topics", headers={"Origin": origin})
    assert resp.headers.get("access-control-allow-origin") in (None, "")


async def test_local_origins_are_granted_in_dev(app_env, app_client_factory) -> None:
    async with app_client_factory({**app_env, "ENVIRONMENT": "dev"}) as dev:
        for origin in LOCAL:
            resp = await dev.get("/api/v1/topics", headers={"Origin": origin})
            assert resp.headers["access-control-allow-origin"] == origin
            assert resp.headers["access-control-allow-credentials"] == "true"
