"""What a write drops from the feed's caches (eq_backend.domain.situations.feed_pages):
only what it can have changed, and nothing when it is rejected.

`raw` is the API without the suite's wait for change notifications: these tests see what
a client sees right after its own write. `settled` waits until the app has heard every
change committed before (its own writes' notifications included), to check that the
notification drops no more than the write itself did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from eqtest.api import Api, User, create_user, err, ok
from eqtest.app import until

FEED = "/api/v1/situations/feed"
MSG = "Situations feed retrieved successfully"


@pytest.fixture(scope="module")
def raw(api: Api) -> Api:
    return Api(api.client)


@pytest.fixture(scope="module")
def heard(api: Api) -> Callable[..., Any]:
    """Wait until the app has heard every change committed so far."""

    async def wait(_: Api) -> None:
        assert api.settle is not None
        await api.settle()

    return wait


@pytest.fixture(scope="module")
def world(db: psycopg.Connection) -> dict[str, Any]:
    """25 situations, the newest first in the feed: pages 1-3 at limit 10."""
    db.execute("TRUNCATE situations, comments, reactions, answers RESTART IDENTITY CASCADE")
    author = create_user(db, name="Invalidation Author")
    ids = [
        db.execute(
            "INSERT INTO situations (user_id, context, question, created_at) "
            "VALUES (%s, %s, %s, now() - %s * interval '1 minute') RETURNING id",
            (author.id, f"context {i}", f"question {i}", i),
        ).fetchone()[0]
        for i in range(25)
    ]
    return {"author": author, "page1": ids[:10], "page2": ids[10:20]}


@pytest.fixture
async def pages(app: Any, api: Api, world: dict[str, Any]) -> Any:
    """The feed's caches, serving (LISTEN up), with the world's rows heard."""
    caches = app.state.ctx.read_caches
    await until(lambda: caches.enabled)
    assert api.settle is not None
    await api.settle()
    return app.state.services.situations.pages


async def _read(api: Api, viewer: User | None, page: int) -> dict[str, Any]:
    data: dict[str, Any] = ok(await api.get(f"{FEED}?page={page}", user=viewer), MSG)
    return data


def _all_cached(pages: Any, viewers: list[User | None], page: int) -> bool:
    return all(
        pages.cached(None if v is None else v.id, page, 10, False) is not None for v in viewers
    )


async def test_rejected_writes_drop_nothing(
    raw: Api, pages: Any, world: dict[str, Any], user: User, other: User
) -> None:
    viewers: list[User | None] = [user, other, None]
    for v in viewers:
        for page in (1, 2):
            await _read(raw, v, page)
    assert _all_cached(pages, viewers, 1)
    assert _all_cached(pages, viewers, 2)
    target = world["page1"][0]
    reaction = f"/api/v1/situations/{target}/reactions"
    err(await raw.post(reaction, json={"reaction_type": "upvote"}), 401)
    err(await raw.post(reaction, json={"reaction_type": "sideways"}, user=user), 422)
    err(
        await raw.post(
            "/api/v1/situations/999999/reactions", json={"reaction_type": "upvote"}, user=user
        ),
        404,
    )
    err(
        await raw.post(f"/api/v1/situations/{target}/comments", json={"content": ""}, user=user),
        422,
    )
    err(await raw.delete(reaction, user=user), 404)  # no reaction to remove
    err(await raw.put(f"/api/v1/situations/{target}", json={"question": "q"}, user=user), 403)
    err(await raw.post("/api/v1/topics/", json={}, user=user), 403)  # topics: admins only
    assert _all_cached(pages, viewers, 1)
    assert _all_cached(pages, viewers, 2)


async def test_a_reaction_drops_that_item_and_that_users_reaction_only(
    raw: Api, heard: Any, pages: Any, world: dict[str, Any], user: User, other: User
) -> None:
    for v in (user, other, None):
        for page in (1, 2):
            await _read(raw, v, page)
    target, rest = world["page1"][3], world["page1"][:3] + world["page1"][4:]
    ok(
        await raw.post(
            f"/api/v1/situations/{target}/reactions", json={"reaction_type": "upvote"}, user=user
        ),
        "Reaction created successfully",
    )

    def left_in_place() -> None:
        assert pages.holds(user.id, target) == (False, False)
        assert pages.holds(other.id, target) == (False, True)  # other's own reaction stays
        for situation in rest + world["page2"]:
            assert pages.holds(user.id, situation) == (True, True), situation
            assert pages.holds(other.id, situation) == (True, True), situation
        assert _all_cached(pages, [user, other, None], 2)

    left_in_place()
    await heard(raw)  # the notification of that write drops no more
    left_in_place()
    # And the writer reads it back at once (read-your-writes in this process).
    item = next(i for i in (await _read(raw, user, 1))["items"] if i["id"] == target)
    assert item["user_reaction"] == "upvote"
    assert item["stats"]["upvotes_count"] == 1
    theirs = next(i for i in (await _read(raw, other, 1))["items"] if i["id"] == target)
    assert theirs["user_reaction"] is None
    assert theirs["stats"]["upvotes_count"] == 1


async def test_a_comment_drops_that_item_only(
    raw: Api, heard: Any, pages: Any, world: dict[str, Any], user: User
) -> None:
    for page in (1, 2):
        await _read(raw, user, page)
    target = world["page2"][5]
    before = next(i for i in (await _read(raw, user, 2))["items"] if i["id"] == target)
    ok(
        await raw.post(f"/api/v1/situations/{target}/comments", json={"content": "hi"}, user=user),
        "Comment created successfully",
    )
    assert pages.holds(user.id, target) == (False, True)
    assert _all_cached(pages, [user], 1)
    await heard(raw)
    assert _all_cached(pages, [user], 1)
    after = next(i for i in (await _read(raw, user, 2))["items"] if i["id"] == target)
    assert after["stats"]["comments_count"] == before["stats"]["comments_count"] + 1


async def test_a_change_made_elsewhere_drops_only_its_rows(
    raw: Api,
    heard: Any,
    pages: Any,
    world: dict[str, Any],
    db: psycopg.Connection,
    user: User,
    other: User,
) -> None:
    for v in (user, other):
        await _read(raw, v, 1)
    target = world["page1"][7]
    db.execute(
        "INSERT INTO reactions (situation_id, user_id, reaction_type) VALUES (%s, %s, 'downvote')",
        (target, other.id),
    )
    await heard(raw)
    assert pages.holds(other.id, target) == (False, False)
    assert pages.holds(user.id, target) == (False, True)
    assert pages.holds(user.id, world["page1"][6]) == (True, True)
    item = next(i for i in (await _read(raw, other, 1))["items"] if i["id"] == target)
    assert item["user_reaction"] == "downvote"


async def test_a_new_situation_reorders_every_page(
    raw: Api, pages: Any, world: dict[str, Any], user: User
) -> None:
    await _read(raw, user, 1)
    await _read(raw, user, 3)
    made = ok(
        await raw.post("/api/v1/situations/", json={"context": "c", "question": "q"}, user=user),
        "Situation created successfully",
    )
    first = (await _read(raw, user, 1))["items"][0]
    assert first["id"] == made["id"]
    assert (await _read(raw, user, 3))["pagination"]["total"] == 26
