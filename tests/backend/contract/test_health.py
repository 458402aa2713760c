"""GET /health and GET /health/db, including a database that hangs."""

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from eq_cluster.services import PostgresServer
from eqtest.api import Api, err, ok
from eqtest.fakes import HangingTcpServer


async def test_health_reports_empty_deployment_fields_when_unset(api: Api) -> None:
    data = ok(await api.get("/health"), "Healthy")
    assert data == {"status": "ok", "deployment": {"at": "", "sha": "", "image": "", "by": ""}}


async def test_health_reports_the_deployment_from_env(app_env, app_client_factory) -> None:
    env = {
        **app_env,
        "DEPLOYED_AT": "2026-11-27T05:00:00Z",
        "DEPLOY_SHA": "abc1234",
        "DEPLOY_IMAGE": "registry.test/eq-backend:sha-abc1234",
        "DEPLOY_BY": "ci",
    }
    async with app_client_factory(env) as other_api:
        data = ok(await other_api.get("/health"), "Healthy")
    assert data["deployment"] == {
        "at": "2026-11-27T05:00:00Z",
        "sha": "abc1234",
        "image": "registry.test/eq-backend:sha-abc1234",
        "by": "ci",
    }


async def test_health_answered_before_routing_is_the_routed_answer(api: Api, app) -> None:
    """GET /health without an Origin header is sent from bytes encoded at startup
    (eq_backend.edge); with one it is routed and gets CORS headers. Otherwise equal."""
    plain = await api.get("/health")
    routed = await api.get("/health", headers={"Origin": "http://frontend.test"})
    assert plain.status_code == routed.status_code == 200
    assert plain.content == routed.content
    assert plain.content == app.reads["/health"].body
    cors = {k: v for k, v in routed.headers.items() if k.startswith("access-control-")}
    assert cors["access-control-allow-origin"] == "http://frontend.test"
    assert not any(k.startswith("access-control-") for k in plain.headers)
    same = {k: v for k, v in routed.headers.items() if k not in cors and k != "vary"}
    assert same == dict(plain.headers)
    metrics = (await api.get("/metrics")).text
    assert 'http_requests_total{method="GET",path="/health",status="200"} ' in metrics


async def test_other_methods_on_health_are_routed(api: Api) -> None:
    assert (await api.post("/health")).status_code == 405


async def test_health_has_no_redirect_with_trailing_slash(api: Api) -> None:
    resp = await api.get("/health/")
    assert resp.status_code in (200, 404)
    assert resp.status_code != 307


async def test_health_db_connected(api: Api) -> None:
    data = ok(await api.get("/health/db"), "Database healthy")
    assert data == {"status": "connected"}


async def test_health_db_answers_503_within_2s_when_the_database_hangs(
    app_env, app_client_factory
) -> None:
    hanging = HangingTcpServer()
    try:
        url = f"postgresql://postgres@127.0.0.1:{hanging.port}/eq"
        async with app_client_factory({**app_env, "DATABASE_URL": url}) as hung_api:
            started = time.monotonic()
            resp = await hung_api.get("/health/db")
            elapsed = time.monotonic() - started
    finally:
        hanging.close()
    body = err(resp, 503)
    assert body["message"] == "Database unhealthy"
    assert isinstance(body["data"]["error"], str)
    assert body["data"]["error"]
    assert elapsed < 3.0, f"/health/db took {elapsed:.1f}s against a hanging database"


def _postgres_pids(pg: PostgresServer) -> list[int]:
    main = pg.postmaster_pid()
    children = Path(f"/proc/{main}/task/{main}/children")
    return [main, *(int(p) for p in children.read_text().split())]


async def test_health_db_answers_503_when_postgres_is_frozen(pg: PostgresServer, api: Api) -> None:
    """SIGSTOP the postmaster and its backends: connections already open hang too."""
    if pg.data_dir is None:
        pytest.fail("this test needs the throwaway PostgreSQL (unset EQ_TEST_DATABASE_URL)")
    ok(await api.get("/health/db"), "Database healthy")  # a pooled connection exists
    pids = _postgres_pids(pg)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        resp = await api.get("/health/db")
        elapsed = time.monotonic() - started
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    body = err(resp, 503)
    assert body["message"] == "Database unhealthy"
    assert elapsed < 3.0, f"/health/db took {elapsed:.1f}s against a frozen database"
    # and it recovers once the database answers again
    deadline = time.monotonic() + 15
    while True:
        resp = await api.get("/health/db")
        if resp.status_code == 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    ok(resp, "Database healthy")


async def test_openapi_schema_is_served(api: Api) -> None:
    resp = await api.get("/schema/openapi.json")
    assert resp.status_code == 200
    schema = resp.json()
    assert "/api/v1/situations/feed" in schema["paths"]
