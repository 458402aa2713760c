"""GET /metrics and GET /api/v1/metrics/: Prometheus text, request counts, gauges."""

import re

from eqtest.api import Api


def _sample_names(text: str) -> set[str]:
    return {
        m.group(1)
        for m in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})? ", text, re.MULTILINE)
    }


async def test_metrics_is_prometheus_text_with_gauges(api: Api) -> None:
    await api.get("/api/v1/topics/")
    resp = await api.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert "# TYPE" in text
    names = _sample_names(text)
    assert "active_users" in names, sorted(names)
    # a per-route request counter and a latency histogram exist
    assert any("request" in n and n.endswith("_total") for n in names), sorted(names)
    assert any(n.endswith("_bucket") for n in names), sorted(names)


async def test_metrics_counts_requests_per_route(api: Api) -> None:
    for _ in range(3):
        await api.get("/api/v1/topics/")
    text = (await api.get("/metrics")).text
    lines = [ln for ln in text.splitlines() if not ln.startswith("#") and "topics" in ln]
    assert lines, "no per-route sample mentions the topics route"


async def test_metrics_has_table_row_count_gauges(api: Api) -> None:
    text = (await api.get("/metrics")).text
    for table in ("users", "topics", "situations", "comments", "reactions"):
        assert re.search(rf"^[a-z_]*\{{[^}}]*{table}[^}}]*\}} \d", text, re.MULTILINE) or re.search(
            rf"^[a-z_]*{table}[a-z_]* \d", text, re.MULTILINE
        ), f"no row-count gauge for {table}"


async def test_api_v1_metrics_serves_the_same_registry(api: Api) -> None:
    for path in ("/api/v1/metrics/", "/api/v1/metrics"):
        resp = await api.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["content-type"].startswith("text/plain")
        assert "active_users" in _sample_names(resp.text)
