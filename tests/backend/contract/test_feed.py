"""GET /api/v1/situations/feed: public, pagination math, stable order, stats, SQL round trips.

This module empties the situations table first, so totals are exact.
"""

import asyncio
import math
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from eqtest.api import Api, assert_no_email, create_user, err, ok, public_user

MSG = "Situations feed retrieved successfully"
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(db):
    """25 situations: some share a created_at (ties broken by id), some have no topic."""
    db.execute("TRUNCATE situations, comments, reactions, answers RESTART IDENTITY CASCADE")
    author = create_user(db, name="Feed Author")
    voters = [create_user(db, name=f"Voter {i}") for i in range(3)]
    (topic,) = db.execute("SELECT id FROM topics ORDER BY id LIMIT 1").fetchone()
    ids = []
    for i in range(25):
        created = T0 + timedelta(minutes=i // 2)  # pairs share a timestamp
        row = db.execute(
            "INSERT INTO situations (topic_id, user_id, context, question, created_at) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (None if i % 5 == 0 else topic, author.id, f"context {i}", f"question {i}", created),
        ).fetchone()
        ids.append(row[0])
    target = ids[-1]  # the newest
    for v, kind in zip(voters, ["upvote", "upvote", "downvote"], strict=True):
        db.execute(
            "INSERT INTO reactions (situation_id, user_id, reaction_type) VALUES (%s, %s, %s)",
            (target, v.id, kind),
        )
        db.execute(
            "INSERT INTO comments (situation_id, user_id, content) VALUES (%s, %s, 'hi')",
            (target, v.id),
        )
    return {"author": author, "voters": voters, "ids": ids, "target": target, "topic": topic}


def _expected_order(ids, desc=True):
    keyed = [(T0 + timedelta(minutes=i // 2), sid) for i, sid in enumerate(ids)]
    keyed.sort(reverse=desc)
    return [sid for _, sid in keyed]


async def test_feed_is_public_and_shaped(api: Api, world) -> None:
    data = ok(await api.get("/api/v1/situations/feed"), MSG)
    assert set(data) == {"items", "pagination"}
    assert data["pagination"] == {
        "page": 1,
        "limit": 10,
        "total": 25,
        "pages": 3,
        "has_next": True,
        "has_prev": False,
    }
    newest = data["items"][0]
    assert newest["id"] == world["target"]
    assert newest["stats"] == {
        "comments_count": 3,
        "reactions_count": 3,
        "upvotes_count": 2,
        "downvotes_count": 1,
    }
    assert newest["user"] == public_user(world["author"])
    assert newest["user_reaction"] is None
    assert newest["created_at"] == (T0 + timedelta(minutes=12)).strftime("%Y-%m-%d %H:%M:%S")
    assert_no_email(data, world["author"].email, *(v.email for v in world["voters"]))


async def test_feed_includes_situations_without_topic(api: Api, world) -> None:
    """Deliberate difference 11."""
    data = ok(await api.get("/api/v1/situations/feed", params={"limit": 100}), MSG)
    assert len(data["items"]) == 25
    assert sum(1 for it in data["items"] if it["topic_id"] is None) == 5


@pytest.mark.parametrize("desc", [True, False])
async def test_feed_order_is_stable_across_pages(api: Api, world, desc) -> None:
    order = "desc" if desc else "asc"
    seen = []
    for page in (1, 2, 3, 4):
        data = ok(
            await api.get(
                "/api/v1/situations/feed", params={"page": page, "limit": 7, "sort_order": order}
            ),
            MSG,
        )
        seen += [it["id"] for it in data["items"]]
        p = data["pagination"]
        assert p["has_prev"] is (page > 1)
        assert p["has_next"] is (page < 4)
        assert p["pages"] == 4
    assert seen == _expected_order(world["ids"], desc)


@pytest.mark.parametrize(
    ("params", "page", "limit"),
    [
        ({"page": 0}, 1, 10),
        ({"page": -3}, 1, 10),
        ({"limit": 0}, 1, 10),
        ({"limit": 101}, 1, 10),
        ({"limit": -1}, 1, 10),
        ({"limit": 100}, 1, 100),
        ({"page": 3, "limit": 10}, 3, 10),
    ],
)
async def test_feed_pagination_is_clamped(api: Api, world, params, page, limit) -> None:
    data = ok(await api.get("/api/v1/situations/feed", params=params), MSG)
    p = data["pagination"]
    assert (p["page"], p["limit"], p["total"]) == (page, limit, 25)
    assert p["pages"] == math.ceil(25 / limit)
    assert p["has_next"] is (page < p["pages"])
    assert p["has_prev"] is (page > 1)
    expected_len = max(0, min(limit, 25 - (page - 1) * limit))
    assert len(data["items"]) == expected_len


async def test_feed_last_page_has_no_next(api: Api, world) -> None:
    data = ok(await api.get("/api/v1/situations/feed", params={"page": 5, "limit": 5}), MSG)
    assert data["pagination"]["has_next"] is False
    assert len(data["items"]) == 5
    beyond = ok(await api.get("/api/v1/situations/feed", params={"page": 9, "limit": 5}), MSG)
    assert beyond["items"] == []
    assert beyond["pagination"]["has_next"] is False


async def test_feed_rejects_unknown_sort(api: Api, world) -> None:
    resp = await api.get("/api/v1/situations/feed", params={"sort_order": "sideways"})
    if resp.status_code == 422:
        err(resp, 422)
    else:  # falls back to the default order
        assert [i["id"] for i in ok(resp, MSG)["items"]] == _expected_order(world["ids"])[:10]


async def test_feed_user_reaction_is_the_callers(api: Api, world) -> None:
    voters = world["voters"]
    for v, expected in zip(voters, ["upvote", "upvote", "downvote"], strict=True):
        data = ok(await api.get("/api/v1/situations/feed", params={"limit": 1}, user=v), MSG)
        assert data["items"][0]["user_reaction"] == expected
    data = ok(
        await api.get("/api/v1/situations/feed", params={"limit": 1}, user=world["author"]), MSG
    )
    assert data["items"][0]["user_reaction"] is None


async def test_feed_with_an_invalid_token_still_answers_or_401(api: Api, world) -> None:
    resp = await api.get("/api/v1/situations/feed", headers={"Cookie": "access_token=garbage"})
    assert resp.status_code in (200, 401)


# ---- SQL round trips ----------------------------------------------------------------------------


def _statements(db, dbname: str) -> int:
    (n,) = db.execute(
        "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s "
        "JOIN pg_database d ON d.oid = s.dbid "
        "WHERE d.datname = %s AND s.query NOT ILIKE '%%pg_stat_statements%%'",
        (dbname,),
    ).fetchone()
    return int(n)


async def _count(api: Api, db, dbname: str, params: dict, user=None) -> int:
    counts = []
    for _ in range(3):  # min of 3: a background gauge refresh may land in one window
        await api.get("/api/v1/situations/feed", params=params, user=user)  # warm the pool
        db.execute("SELECT pg_stat_statements_reset()")
        resp = await api.get("/api/v1/situations/feed", params=params, user=user)
        assert resp.status_code == 200
        counts.append(_statements(db, dbname))
    return min(counts)


async def test_feed_uses_one_or_two_statements_whatever_the_size(
    app_env, app_client_factory, world, db, database_url
) -> None:
    """What a feed read costs the database (the read cache off: a hit costs nothing,
    tests/backend/contract/test_read_cache.py)."""
    dbname = database_url.rsplit("/", 1)[-1]
    try:
        db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        db.execute("SELECT pg_stat_statements_reset()")
    except psycopg.Error as exc:
        pytest.fail(
            "counting statements needs pg_stat_statements in shared_preload_libraries "
            f"(the throwaway server has it; unset EQ_TEST_DATABASE_URL): {exc}"
        )
    async with app_client_factory({**app_env, "READ_CACHE": "false"}) as api:
        await _assert_one_or_two_statements(api, world, db, dbname)


async def _quiet(db, dbname: str) -> None:
    """Until the app's own start-up work is done (its engine's first connect, the first
    gauge refresh): 0.3 s without a statement. It can outlast the three windows of a count."""
    for _ in range(50):
        db.execute("SELECT pg_stat_statements_reset()")
        await asyncio.sleep(0.3)
        if _statements(db, dbname) == 0:
            return
    pytest.fail("the app never stopped running statements of its own")


async def _assert_one_or_two_statements(api: Api, world, db, dbname: str) -> None:
    await _quiet(db, dbname)
    small = await _count(api, db, dbname, {"limit": 1})
    large = await _count(api, db, dbname, {"limit": 100})
    # grow the data 10x: more situations, reactions and comments
    author = world["author"]
    db.execute(
        "INSERT INTO situations (topic_id, user_id, context, question) "
        "SELECT NULL, %s, 'bulk ' || g, 'q' FROM generate_series(1, 250) g",
        (author.id,),
    )
    db.execute(
        "INSERT INTO comments (situation_id, user_id, content) "
        "SELECT id, %s, 'bulk' FROM situations WHERE context LIKE 'bulk %%'",
        (author.id,),
    )
    try:
        bigger = await _count(api, db, dbname, {"limit": 100})
        authed = await _count(api, db, dbname, {"limit": 100}, user=world["voters"][0])
    finally:
        db.execute("DELETE FROM situations WHERE context LIKE 'bulk %%'")
    assert 1 <= small <= 2, f"feed?limit=1 ran {small} statements"
    assert large == small, f"feed?limit=100 ran {large} statements vs {small} for limit=1"
    assert bigger == small, f"with 10x data the feed ran {bigger} statements"
    # an authenticated request may add the caller lookup, nothing per item
    assert authed <= small + 1, f"authenticated feed ran {authed} statements"
