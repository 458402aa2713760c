"""Redis: active-user keys and gauge; Redis down never breaks a request; reconnect later."""

import asyncio
import re
import time

import pytest
from eq_cluster.services import RedisServer
from eqtest.api import Api, err, ok


@pytest.fixture(scope="module")
def app_env(app_env):
    # refresh the gauges quickly so the test sees them move
    return {**app_env, "METRICS_REFRESH_SECONDS": "0.5"}


async def _eventually(check, within: float = 15.0, every: float = 0.25):
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(every)


async def test_authenticated_request_marks_the_user_active(api: Api, user, redis_client) -> None:
    ok(await api.get("/api/v1/users/me", user=user), "Current user retrieved successfully")
    assert redis_client.get(f"active_user:{user.id}") == "1"
    ttl = redis_client.ttl(f"active_user:{user.id}")
    assert 100 < ttl <= 120


async def test_anonymous_requests_mark_nobody(api: Api, redis_client) -> None:
    redis_client.flushdb()
    ok(await api.get("/api/v1/topics/"), "Topics retrieved successfully")
    assert redis_client.keys("active_user:*") == []


async def test_active_users_gauge_counts_keys(api: Api, new_user, redis_client) -> None:
    redis_client.flushdb()
    users = [new_user() for _ in range(3)]
    for u in users:
        ok(await api.get("/api/v1/users/me", user=u), "Current user retrieved successfully")

    async def gauge_is_three():
        text = (await api.get("/metrics")).text
        m = re.search(r"^active_users(?:\{[^}]*\})? (\S+)$", text, re.MULTILINE)
        return m is not None and float(m.group(1)) == 3.0

    assert await _eventually(gauge_is_three), "active_users gauge never reached 3"


async def test_redis_down_keeps_the_api_serving_and_it_reconnects(
    api: Api, user, redis_server: RedisServer, redis_client
) -> None:
    if not redis_server.can_restart:
        pytest.fail(
            "this test stops Redis: it needs the throwaway server (unset EQ_TEST_REDIS_URL)"
        )
    redis_server.halt()
    try:
        started = time.monotonic()
        ok(await api.get("/health"), "Healthy")
        ok(await api.get("/api/v1/users/me", user=user), "Current user retrieved successfully")
        ok(
            await api.get("/api/v1/situations/feed", user=user),
            "Situations feed retrieved successfully",
        )
        created = ok(
            await api.post(
                "/api/v1/situations/", json={"context": "c", "question": "q"}, user=user
            ),
            "Situation created successfully",
        )
        ok(
            await api.get(f"/api/v1/situations/{created['id']}", user=user),
            "Situation retrieved successfully",
        )
        resp = await api.get("/metrics")
        assert resp.status_code == 200
        elapsed = time.monotonic() - started
        assert elapsed < 5, f"requests with Redis down took {elapsed:.1f}s"
        # analyze fails open on the rate limit (LLM is up)
        resp = await api.post(
            "/api/v1/analysis/analyze",
            json={"situation_id": created["id"], "answer_text": "calm"},
            user=user,
        )
        assert resp.status_code == 200, resp.text
    finally:
        redis_server.resume()

    redis_client.flushdb()

    async def key_is_back():
        r = await api.get("/api/v1/users/me", user=user)
        assert r.status_code == 200
        return redis_client.get(f"active_user:{user.id}") == "1"

    assert await _eventually(key_is_back, within=20, every=0.5), "the app never reconnected"


async def test_no_token_no_redis_write_and_401(api: Api, redis_client) -> None:
    redis_client.flushdb()
    err(await api.get("/api/v1/users/me"), 401)
    assert redis_client.keys("active_user:*") == []


async def test_a_frozen_redis_costs_a_write_its_call_timeout_once(
    api: Api, user, redis_server: RedisServer
) -> None:
    """Redis stopped dead (connections open, no answer): the rate limit fails open after
    its call timeout, and for the next seconds Redis is left alone."""
    from eq_backend.redis_state import CALL_TIMEOUT_SECONDS

    if not redis_server.can_restart:
        pytest.fail(
            "this test freezes Redis: it needs the throwaway server (unset EQ_TEST_REDIS_URL)"
        )
    situation = ok(
        await api.post("/api/v1/situations/", json={"context": "c", "question": "q"}, user=user),
        "Situation created successfully",
    )
    path = f"/api/v1/situations/{situation['id']}/reactions"
    created = "Reaction created successfully"
    with redis_server.frozen():
        started = time.monotonic()
        ok(await api.post(path, json={"reaction_type": "upvote"}, user=user), created)
        first = time.monotonic() - started
        started = time.monotonic()
        ok(await api.post(path, json={"reaction_type": "downvote"}, user=user), created)
        second = time.monotonic() - started
    print(f"\nfrozen Redis: first write {first:.2f} s, second {second:.3f} s")
    assert CALL_TIMEOUT_SECONDS <= first < CALL_TIMEOUT_SECONDS + 2, first
    assert second < CALL_TIMEOUT_SECONDS, second  # not asked again while it is down
