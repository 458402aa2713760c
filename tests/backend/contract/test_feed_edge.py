"""GET /api/v1/situations/feed without an Origin header is answered before routing
(eq_backend.edge); with one it is routed and gets CORS headers. Otherwise the same answer,
and what the edge cannot answer exactly as the route would is routed."""

from __future__ import annotations

from typing import Any

import pytest
from eqtest.api import Api, User, err

FEED = "/api/v1/situations/feed"
ORIGIN = {"Origin": "http://frontend.test"}


def _without_cors(headers: Any) -> dict[str, str]:
    return {k: v for k, v in headers.items() if not k.startswith("access-control-") and k != "vary"}


@pytest.mark.parametrize(
    "query",
    ["", "?page=2&limit=3", "?page=0&limit=1000&sort_order=ASC", "?sort_by=id&unknown=1"],
)
async def test_the_edge_answer_is_the_routed_answer(api: Api, user: User, query: str) -> None:
    for viewer in (None, user):
        plain = await api.get(FEED + query, user=viewer)
        routed = await api.get(FEED + query, user=viewer, headers=ORIGIN)
        assert plain.status_code == routed.status_code == 200
        assert plain.content == routed.content
        assert routed.headers["access-control-allow-origin"] == "http://frontend.test"
        assert not any(k.startswith("access-control-") for k in plain.headers)
        assert _without_cors(routed.headers) == dict(plain.headers)


async def test_a_bearer_token_and_a_bad_token_are_read_as_the_route_reads_them(
    api: Api, user: User
) -> None:
    for headers in (user.bearer, {"Cookie": "access_token=not-a-token"}, {"Cookie": "x=1"}):
        plain = await api.get(FEED, headers=headers)
        routed = await api.get(FEED, headers={**headers, **ORIGIN})
        assert plain.content == routed.content


@pytest.mark.parametrize("query", ["?page=abc", "?limit=1.5", "?page=1&page=2", "?page="])
async def test_what_the_edge_cannot_answer_is_routed(api: Api, query: str) -> None:
    plain = await api.get(FEED + query)
    routed = await api.get(FEED + query, headers=ORIGIN)
    assert plain.status_code == routed.status_code
    assert plain.content == routed.content
    if plain.status_code != 200:
        err(plain, plain.status_code)


async def test_the_edge_answer_is_counted_and_logged(api: Api) -> None:
    await api.get(FEED)
    metrics = (await api.get("/metrics")).text
    assert 'http_requests_total{method="GET",path="/api/v1/situations/feed",status="200"} ' in (
        metrics
    )
