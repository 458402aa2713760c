"""Limits on what one client may send (issue 12, findings 10-11): text lengths, body
nesting, per-user write rates (failing open without Redis), and the comment posted while
its situation is deleted."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest
from eq_cluster.services import PostgresServer, free_port
from eqtest.api import Api, User, create_user, err, ok

LIMITS = {
    "topic name": 100,
    "situation context": 5_000,
    "situation question": 1_000,
    "image_url": 2_048,
    "comment": 2_000,
    "answer_text": 5_000,
    "sentiment content": 5_000,
}


@pytest.fixture(scope="module")
def situation_id(db: psycopg.Connection) -> int:
    owner = create_user(db, name="Limits Owner")
    return _new_situation(db, owner)


def _new_situation(db: psycopg.Connection, owner: User) -> int:
    row = db.execute(
        "INSERT INTO situations (user_id, context, question) VALUES (%s, 'c', 'q') RETURNING id",
        (owner.id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _writes(sid: int, size: dict[str, int]) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, path, body, field) for every text field, each `size[field]` characters."""

    def text(kind: str) -> str:
        return "x" * size[kind]

    return [
        ("POST", "/api/v1/topics/", {"name": text("topic name")}, "name"),
        (
            "POST",
            "/api/v1/situations/",
            {"context": text("situation context"), "question": "q"},
            "context",
        ),
        (
            "POST",
            "/api/v1/situations/",
            {"context": "c", "question": text("situation question")},
            "question",
        ),
        (
            "POST",
            "/api/v1/situations/contribute",
            {"context": "c", "question": "q", "image_url": text("image_url")},
            "image_url",
        ),
        ("PUT", f"/api/v1/situations/{sid}", {"context": text("situation context")}, "context"),
        ("POST", f"/api/v1/situations/{sid}/comments", {"content": text("comment")}, "content"),
        (
            "POST",
            f"/api/v1/comments/situations/{sid}/comments",
            {"content": text("comment")},
            "content",
        ),
        (
            "POST",
            "/api/v1/comments/situations/comments",
            {"content": text("comment"), "situation_id": sid},
            "content",
        ),
        (
            "POST",
            "/api/v1/analysis/analyze-sentiment",
            {"content": text("sentiment content")},
            "content",
        ),
        (
            "POST",
            "/api/v1/analysis/analyze",
            {"situation_id": sid, "answer_text": text("answer_text")},
            "answer_text",
        ),
    ]


async def test_every_text_field_over_its_limit_is_422_naming_the_field(
    api: Api, admin: User, db: psycopg.Connection
) -> None:
    """Finding 11: a 1 MB context and a 100 KB topic name were accepted."""
    sid = _new_situation(db, admin)
    over = {k: v + 1 for k, v in LIMITS.items()}
    for method, path, body, field in _writes(sid, over):
        resp = await api.request(method, path, json=body, user=admin)
        body_out = err(resp, 422)
        assert any(field in e for e in body_out["errors"]), (path, body_out)
    huge = await api.post(
        "/api/v1/situations/", json={"context": "x" * 1_000_000, "question": "q"}, user=admin
    )
    err(huge, 422)


async def test_every_text_field_at_its_limit_is_accepted(
    api: Api, admin: User, db: psycopg.Connection, llm_reset: Any
) -> None:
    sid = _new_situation(db, admin)
    for method, path, body, _field in _writes(sid, LIMITS):
        resp = await api.request(method, path, json=body, user=admin)
        assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("where", ["an unknown field", "a known field"])
async def test_a_body_nested_too_deep_is_422_not_500(
    api: Api, user: User, depth: int, where: str
) -> None:
    """Finding 10: JSON nested 1,000 deep in a request body was a 500."""
    nested = "[" * depth + "]" * depth
    key = "extra" if where == "an unknown field" else "context"
    raw = f'{{"question": "q", "{key}": {nested}, "context2": "c"}}'
    resp = await api.post(
        "/api/v1/situations/",
        content=raw.encode(),
        headers={"Content-Type": "application/json"},
        user=user,
    )
    assert "nested too deeply" in err(resp, 422)["errors"][0]


# --- the comment on a situation deleted meanwhile ---------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/situations/{sid}/comments", {"content": "late"}),
        ("/api/v1/comments/situations/{sid}/comments", {"content": "late"}),
        ("/api/v1/situations/{sid}/reactions", {"reaction_type": "upvote"}),
    ],
)
async def test_a_write_on_a_situation_deleted_meanwhile_is_404(
    api: Api,
    pg: PostgresServer,
    db: psycopg.Connection,
    database_url: str,
    user: User,
    path: str,
    body: dict[str, str],
) -> None:
    """Finding 10: a comment posted while its situation was deleted was a 500 (the foreign
    key). The delete is held open until the write waits on it, then committed."""
    sid = _new_situation(db, user)
    dbname = database_url.rsplit("/", 1)[-1]
    deleter = pg.connect(dbname)
    deleter.autocommit = False
    try:
        deleter.execute("DELETE FROM situations WHERE id = %s", (sid,))
        write = asyncio.create_task(api.post(path.format(sid=sid), json=body, user=user))
        deadline = time.monotonic() + 10
        while not _a_write_waits_on_a_lock(db, dbname):
            assert not write.done(), f"the write did not wait for the delete: {write.result()}"
            assert time.monotonic() < deadline, "the write never reached the database"
            await asyncio.sleep(0.02)
        deleter.commit()
        resp = await write
    finally:
        deleter.close()
    assert err(resp, 404)["message"] == "Situation not found"


def _a_write_waits_on_a_lock(db: psycopg.Connection, dbname: str) -> bool:
    row = db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
        (dbname,),
    ).fetchone()
    return bool(row and row[0])


# --- per-user write rate limits ---------------------------------------------------------


WINDOW_SECONDS = 3600


@pytest.fixture(scope="module")
def limited_env(app_env: dict[str, str]) -> dict[str, str]:
    return {**app_env, "WRITE_RATE_LIMIT": "5/hour"}


def _clear_of_a_window_edge() -> None:
    """Windows are fixed (they start on the hour): a burst that straddled an edge would be
    counted in two windows. Wait for the next one when this one is about to end."""
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < 30:
        time.sleep(left + 0.5)


async def test_concurrent_comments_beyond_the_rate_are_429_with_retry_after(
    limited_env: dict[str, str],
    app_client_factory: Any,
    db: psycopg.Connection,
    redis_client: Any,
) -> None:
    """Finding 11: 100 concurrent comments from one user were all accepted."""
    writer = create_user(db, name="Busy Writer")
    sid = _new_situation(db, writer)
    async with app_client_factory(limited_env) as limited:
        _clear_of_a_window_edge()
        answers = await asyncio.gather(
            *(
                limited.post(
                    f"/api/v1/situations/{sid}/comments", json={"content": f"c{i}"}, user=writer
                )
                for i in range(20)
            )
        )
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [200] * 5 + [429] * 15
        refused = next(r for r in answers if r.status_code == 429)
        assert err(refused, 429)["message"] == "Too many requests"
        assert 1 <= int(refused.headers["retry-after"]) <= WINDOW_SECONDS
        # Other kinds of writes are counted apart; other users too.
        ok(
            await limited.post(
                f"/api/v1/situations/{sid}/reactions", json={"reaction_type": "upvote"}, user=writer
            ),
            "Reaction created successfully",
        )
        ok(
            await limited.post(
                "/api/v1/situations/", json={"context": "c", "question": "q"}, user=writer
            ),
            "Situation created successfully",
        )
        someone = create_user(db, name="Someone Else")
        ok(
            await limited.post(
                f"/api/v1/situations/{sid}/comments", json={"content": "mine"}, user=someone
            ),
            "Comment created successfully",
        )
    stored = db.execute(
        "SELECT count(*) FROM comments WHERE situation_id = %s AND user_id = %s", (sid, writer.id)
    ).fetchone()
    assert stored is not None
    assert stored[0] == 5


async def test_write_limits_fail_open_without_redis(
    limited_env: dict[str, str], app_client_factory: Any, db: psycopg.Connection
) -> None:
    writer = create_user(db, name="Writer Without Redis")
    sid = _new_situation(db, writer)
    env = {**limited_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    async with app_client_factory(env) as no_redis:
        answers = [
            await no_redis.post(
                f"/api/v1/situations/{sid}/comments", json={"content": f"c{i}"}, user=writer
            )
            for i in range(8)
        ]
    assert [r.status_code for r in answers] == [200] * 8


async def test_a_rate_limited_write_without_a_token_is_401(
    limited_env: dict[str, str], app_client_factory: Any, situation_id: int
) -> None:
    async with app_client_factory(limited_env) as limited:
        resp = await limited.post(
            f"/api/v1/situations/{situation_id}/comments", json={"content": "x"}
        )
    err(resp, 401)
