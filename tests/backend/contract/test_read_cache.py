"""The per-process read cache (eq_backend.readcache) on a real PostgreSQL.

`raw` below is the API without the suite's usual wait for change notifications, so these
tests see what a client sees: its own writes at once, others' changes once notified.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import psycopg
import pytest
from eqtest.api import Api, ok
from eqtest.app import until

TOPICS = "/api/v1/topics/"
FEED = "/api/v1/situations/feed"


@pytest.fixture(scope="module")
def raw(api: Api) -> Api:
    return Api(api.client)


@pytest.fixture
async def listening(app: Any) -> Any:
    """The app's LISTEN connection is up, so its caches serve."""
    caches = app.state.ctx.read_caches
    await until(lambda: caches.enabled)
    return caches


def _topic_reads(db: psycopg.Connection) -> int:
    (n,) = db.execute(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND query ILIKE 'SELECT topics.name, topics.id%%FROM topics%%LIMIT%%'"
    ).fetchone()
    return int(n)


async def test_a_cached_topic_list_costs_the_database_nothing(
    raw: Api, listening: Any, db: psycopg.Connection
) -> None:
    db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    ok(await raw.get(TOPICS), "Topics retrieved successfully")
    db.execute("SELECT pg_stat_statements_reset()")
    for _ in range(5):
        ok(await raw.get(TOPICS), "Topics retrieved successfully")
    assert _topic_reads(db) == 0


async def test_own_writes_are_read_back_at_once(raw: Api, listening: Any, user, admin, db) -> None:
    before = ok(await raw.get(TOPICS), "Topics retrieved successfully")
    made = ok(
        await raw.post(TOPICS, json={"name": f"cached {time.time_ns()}"}, user=admin),
        "Topic created successfully",
    )
    after = ok(await raw.get(TOPICS), "Topics retrieved successfully")
    assert made in after
    assert made not in before

    situation = ok(
        await raw.post("/api/v1/situations/", json={"context": "c", "question": "q"}, user=user),
        "Situation created successfully",
    )
    page = ok(await raw.get(FEED, user=user), "Situations feed retrieved successfully")
    assert page["items"][0]["id"] == situation["id"]
    assert page["items"][0]["stats"]["upvotes_count"] == 0
    ok(
        await raw.post(
            f"/api/v1/situations/{situation['id']}/reactions",
            json={"reaction_type": "upvote"},
            user=user,
        ),
        "Reaction created successfully",
    )
    page = ok(await raw.get(FEED, user=user), "Situations feed retrieved successfully")
    assert page["items"][0]["stats"]["upvotes_count"] == 1
    assert page["items"][0]["user_reaction"] == "upvote"


async def test_changes_made_elsewhere_are_heard(raw: Api, listening: Any, db) -> None:
    ok(await raw.get(TOPICS), "Topics retrieved successfully")  # cached now
    name = f"from psql {time.time_ns()}"
    db.execute("INSERT INTO topics (name) VALUES (%s)", (name,))
    seen: list[str] = []

    async def poll() -> None:
        while True:
            data = ok(await raw.get(TOPICS), "Topics retrieved successfully")
            if any(t["name"] == name for t in data):
                seen.append(name)
                return
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout=2)  # heard, not merely expired from a cache
    assert seen == [name]


async def test_losing_the_listen_connection_turns_caches_off_until_it_is_back(
    raw: Api, listening: Any, db, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="eq_backend.readcache")
    ok(await raw.get(TOPICS), "Topics retrieved successfully")
    (killed,) = db.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'eq-backend-listen' AND datname = current_database()"
    ).fetchone()
    assert killed == 1
    await until(lambda: not listening.enabled, seconds=10)
    # Off (it retries after 0.5 s): a change made now is read from the database at once.
    name = f"while deaf {time.time_ns()}"
    db.execute("INSERT INTO topics (name) VALUES (%s)", (name,))
    data = ok(await raw.get(TOPICS), "Topics retrieved successfully")
    assert not listening.enabled
    assert any(t["name"] == name for t in data)
    await until(lambda: listening.enabled, seconds=10)
    messages = [r.getMessage() for r in caplog.records if r.name == "eq_backend.readcache"]
    assert any("lost" in m for m in messages), messages
    assert any("back" in m for m in messages), messages


async def test_read_cache_false_reads_the_database_every_time(
    app_env, app_client_factory, db
) -> None:
    db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    async with app_client_factory({**app_env, "READ_CACHE": "false"}) as uncached:
        ok(await uncached.get(TOPICS), "Topics retrieved successfully")
        await asyncio.sleep(0.3)  # a LISTEN would be up by now
        db.execute("SELECT pg_stat_statements_reset()")
        for _ in range(3):
            ok(await uncached.get(TOPICS), "Topics retrieved successfully")
        assert _topic_reads(db) == 3
