"""What production exposes on its public port (issue 12, findings 8-9): no API docs, no
metrics (they move to a port of their own), and an OAuth redirect_uri that never comes
from the request's Host header."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from eq_cluster.services import free_port
from eqtest.api import Api, err, ok

DOCS = ["/schema", "/schema/openapi.json", "/schema/swagger", "/openapi.json", "/docs"]
METRICS = ["/metrics", "/api/v1/metrics", "/api/v1/metrics/"]


@pytest.fixture(scope="module")
def production_env(app_env: dict[str, str]) -> dict[str, str]:
    return {
        **app_env,
        "ENVIRONMENT": "production",
        "PUBLIC_BASE_URL": "https://api.eq.example",
        "METRICS_PORT": str(free_port()),
    }


async def test_production_serves_no_docs_and_no_metrics_on_the_api_port(
    production_env: dict[str, str], app_client_factory: Any
) -> None:
    async with app_client_factory(production_env) as prod:
        for path in [*DOCS, *METRICS]:
            err(await prod.get(path), 404)
        ok(await prod.get("/api/v1/topics/"), "Topics retrieved successfully")


async def test_production_metrics_answer_on_their_own_port(
    production_env: dict[str, str], app_client_factory: Any
) -> None:
    port = production_env["METRICS_PORT"]
    async with app_client_factory(production_env) as prod:
        await prod.get("/api/v1/topics/")
        async with httpx.AsyncClient() as scraper:
            resp = await scraper.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert resp.status_code == 200
    assert "table_rows" in resp.text
    counted = [ln for ln in resp.text.splitlines() if ln.startswith("http_requests_total{")]
    assert any("topics" in ln for ln in counted), counted
    async with httpx.AsyncClient() as scraper:  # and it is closed with the app
        with pytest.raises(httpx.ConnectError):
            await scraper.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


async def test_docs_and_metrics_stay_where_settings_say(
    app_env: dict[str, str], app_client_factory: Any, api: Api
) -> None:
    for path in ("/schema/openapi.json", "/openapi.json", "/metrics", "/api/v1/metrics"):
        assert (await api.get(path)).status_code == 200, path  # outside production
    env = {**app_env, "API_DOCS": "false", "METRICS_PORT": str(free_port())}
    async with app_client_factory(env) as closed:
        for path in [*DOCS, *METRICS]:
            err(await closed.get(path), 404)


async def test_production_redirect_uri_ignores_the_host_header(
    production_env: dict[str, str], app_client_factory: Any
) -> None:
    """Finding 9: the redirect_uri came from the Host header when PUBLIC_BASE_URL was unset;
    production now refuses to start without it, and uses it whatever Host says."""
    async with app_client_factory(production_env) as prod:
        resp = await prod.get("/api/v1/auth/login/google", headers={"Host": "evil.example"})
    assert resp.status_code == 302
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    assert query["redirect_uri"] == ["https://api.eq.example/api/v1/auth/callback/google"]
