"""Read-your-writes across replicas: two apps on one database, each with its own caches.
A write acknowledged by one is shown by the other's next reads once PostgreSQL's row
notification reaches it (eq_backend.readcache), and the other's cache keeps serving
everything the write did not touch.

How soon is measured by the benchmark (`python -m benchmarks.backend`, recorded in
docs/benchmarks.md); this test checks that every write shows, with a generous bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from eqtest.api import Api, User, create_user, ok
from eqtest.app import until

FEED = "/api/v1/situations/feed?page=1"
MSG = "Situations feed retrieved successfully"
SHOWN_WITHIN_SECONDS = 5.0  # far above the expected milliseconds: a lost write fails


@pytest.fixture(scope="module")
def world(db: psycopg.Connection) -> list[int]:
    db.execute("TRUNCATE situations, comments, reactions, answers RESTART IDENTITY CASCADE")
    author = create_user(db, name="Replica Author")
    return [
        db.execute(
            "INSERT INTO situations (user_id, context, question, created_at) "
            "VALUES (%s, 'c', 'q', now() - %s * interval '1 minute') RETURNING id",
            (author.id, i),
        ).fetchone()[0]
        for i in range(15)
    ]


async def _shown(reader: Api, user: User, check: Callable[[dict[str, Any]], bool]) -> None:
    deadline = time.monotonic() + SHOWN_WITHIN_SECONDS
    while True:
        data = ok(await reader.get(FEED, user=user), MSG)
        if check(data):
            return
        assert time.monotonic() < deadline, f"the other replica never showed it: {data}"
        await asyncio.sleep(0.002)


def _item(data: dict[str, Any], situation_id: int) -> dict[str, Any]:
    item: dict[str, Any] = next(i for i in data["items"] if i["id"] == situation_id)
    return item


async def test_writes_through_one_replica_show_on_the_other(
    app: Any,
    api: Api,
    app_env: dict[str, str],
    replica_factory: Any,
    world: list[int],
    user: User,
    other: User,
) -> None:
    writer = Api(api.client)  # no waiting on notifications: what clients see
    async with replica_factory(app_env) as (replica_app, replica_api):
        reader = Api(replica_api.client)
        for a in (app, replica_app):
            caches = a.state.ctx.read_caches
            await until(lambda caches=caches: caches.enabled)
        assert replica_api.settle is not None
        await replica_api.settle()
        pages = replica_app.state.services.situations.pages
        for n in range(20):
            target = world[n % 10]
            ok(await reader.get(FEED, user=user), MSG)
            ok(await reader.get(FEED, user=other), MSG)
            assert pages.cached(user.id, 1, 10, False) is not None  # served from its cache
            kind = "upvote" if n % 2 == 0 else "downvote"
            ok(
                await writer.post(
                    f"/api/v1/situations/{target}/reactions",
                    json={"reaction_type": kind},
                    user=user,
                ),
                "Reaction created successfully",
            )
            await _shown(
                reader, user, lambda d, t=target, k=kind: _item(d, t)["user_reaction"] == k
            )
            # The other viewer's own reactions were never dropped on the replica.
            assert pages.holds(other.id, target)[1]
        before = _item(ok(await reader.get(FEED, user=other), MSG), world[0])
        ok(
            await writer.post(
                f"/api/v1/situations/{world[0]}/comments", json={"content": "hi"}, user=other
            ),
            "Comment created successfully",
        )
        await _shown(
            reader,
            other,
            lambda d: (
                _item(d, world[0])["stats"]["comments_count"]
                == before["stats"]["comments_count"] + 1
            ),
        )
        made = ok(
            await writer.post(
                "/api/v1/situations/", json={"context": "new", "question": "q"}, user=user
            ),
            "Situation created successfully",
        )
        await _shown(reader, user, lambda d: d["items"][0]["id"] == made["id"])
