"""/api/v1/situations: CRUD, contribute, user lists, comments and reactions under a situation."""

import re
import time

import psycopg
import pytest
from eqtest.api import Api, assert_no_email, err, ok, public_user

SITUATION_OUT = {"topic_id", "context", "question", "id", "user_id", "created_at"}
FEED_ITEM = {
    "id",
    "topic_id",
    "user_id",
    "user",
    "image_url",
    "context",
    "question",
    "created_at",
    "stats",
    "user_reaction",
}
STATS = {"comments_count", "reactions_count", "upvotes_count", "downvotes_count"}
COMMENT_OUT = {
    "content",
    "situation_id",
    "id",
    "user_id",
    "sentiment_analysis",
    "created_at",
    "user",
}
REACTION_OUT = {"situation_id", "user_id", "reaction_type", "id", "created_at", "user"}
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
FEED_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


@pytest.fixture(scope="module")
def topic_id(db) -> int:
    return db.execute("SELECT id FROM topics ORDER BY id LIMIT 1").fetchone()[0]


async def _create(api: Api, user, topic_id=None, **kw) -> dict:
    body = {"context": kw.pop("context", f"ctx {time.time_ns()}"), "question": "What now?", **kw}
    if topic_id is not None:
        body["topic_id"] = topic_id
    return ok(
        await api.post("/api/v1/situations/", json=body, user=user),
        "Situation created successfully",
    )


# ---- create / read -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/situations/", "/api/v1/situations"])
async def test_create_situation(api: Api, user, topic_id, path) -> None:
    resp = await api.post(
        path, json={"topic_id": topic_id, "context": "ctx", "question": "q?"}, user=user
    )
    data = ok(resp, "Situation created successfully")
    assert set(data) == SITUATION_OUT
    assert data["topic_id"] == topic_id
    assert data["user_id"] == user.id
    assert (data["context"], data["question"]) == ("ctx", "q?")
    assert ISO.match(data["created_at"])


async def test_create_situation_without_topic(api: Api, user) -> None:
    data = await _create(api, user)
    assert data["topic_id"] is None


async def test_create_situation_needs_auth(api: Api, topic_id) -> None:
    err(await api.post("/api/v1/situations/", json={"context": "c", "question": "q"}), 401)


@pytest.mark.parametrize(
    "body",
    [
        {"context": "", "question": "q"},
        {"context": "c", "question": ""},
        {"question": "q"},
        {"context": "c"},
        {"context": "c", "question": "q", "topic_id": "one"},
    ],
)
async def test_create_situation_validates(api: Api, user, body) -> None:
    err(await api.post("/api/v1/situations/", json=body, user=user), 422)


async def test_create_situation_with_unknown_topic_is_422(api: Api, user) -> None:
    """Deliberate difference 3: not silently stored with a null topic."""
    body = err(
        await api.post(
            "/api/v1/situations/",
            json={"topic_id": 987654321, "context": "c", "question": "q"},
            user=user,
        ),
        422,
    )
    assert "Traceback" not in str(body)
    assert "ForeignKey" not in str(body)


async def test_get_situation(api: Api, user, other, topic_id) -> None:
    made = await _create(api, user, topic_id)
    data = ok(await api.get(f"/api/v1/situations/{made['id']}"), "Situation retrieved successfully")
    assert data == made
    err(await api.get("/api/v1/situations/999999999"), 404)
    err(await api.get("/api/v1/situations/abc"), 422)


async def test_user_me_situations(api: Api, new_user, topic_id) -> None:
    me = new_user()
    made = [await _create(api, me, topic_id) for _ in range(2)]
    data = ok(
        await api.get("/api/v1/situations/user/me", user=me),
        "User situations retrieved successfully",
    )
    assert sorted(d["id"] for d in data) == sorted(m["id"] for m in made)
    for d in data:
        assert set(d) == SITUATION_OUT
    err(await api.get("/api/v1/situations/user/me"), 401)


async def test_user_situations_are_feed_items_newest_first(
    api: Api, new_user, other, topic_id
) -> None:
    author = new_user()
    first = await _create(api, author, topic_id)
    second = await _create(api, author)
    ok(
        await api.post(
            f"/api/v1/situations/{first['id']}/reactions",
            json={"reaction_type": "upvote"},
            user=other,
        ),
        "Reaction created successfully",
    )
    anon = ok(
        await api.get(f"/api/v1/situations/user/{author.id}"),
        "User situations retrieved successfully",
    )
    assert [d["id"] for d in anon] == [second["id"], first["id"]]
    for d in anon:
        assert set(d) == FEED_ITEM
        assert set(d["stats"]) == STATS
        assert d["user"] == public_user(author)
        assert d["user_reaction"] is None
        assert FEED_TIME.match(d["created_at"]), d["created_at"]
    assert anon[1]["stats"]["upvotes_count"] == 1
    assert_no_email(anon, author.email, other.email)
    mine = ok(
        await api.get(f"/api/v1/situations/user/{author.id}", user=other),
        "User situations retrieved successfully",
    )
    assert {d["id"]: d["user_reaction"] for d in mine} == {
        second["id"]: None,
        first["id"]: "upvote",
    }
    err(await api.get("/api/v1/situations/user/abc"), 422)


# ---- contribute ------------------------------------------------------------------------------

CONTRIBUTED = {"id", "topic_id", "user_id", "image_url", "context", "question", "created_at"}


@pytest.mark.parametrize(
    ("extra", "stored_image"),
    [
        ({"topic_id": None, "image_url": ""}, None),
        ({}, None),
        ({"topic_id": None}, None),
        ({"image_url": "https://img.test/a.png"}, "https://img.test/a.png"),
    ],
)
async def test_contribute(api: Api, user, db, extra, stored_image) -> None:
    body = {"context": "contributed ctx", "question": "contributed q", **extra}
    data = ok(
        await api.post("/api/v1/situations/contribute", json=body, user=user),
        "Situation contributed successfully",
    )
    assert set(data) == CONTRIBUTED
    assert data["image_url"] == stored_image
    assert data["user_id"] == user.id
    assert data["topic_id"] is None
    (flag,) = db.execute(
        "SELECT is_contributed FROM situations WHERE id = %s", (data["id"],)
    ).fetchone()
    assert flag is True


async def test_contribute_with_topic(api: Api, user, topic_id) -> None:
    data = ok(
        await api.post(
            "/api/v1/situations/contribute",
            json={"topic_id": topic_id, "context": "c", "question": "q"},
            user=user,
        ),
        "Situation contributed successfully",
    )
    assert data["topic_id"] == topic_id


async def test_contribute_errors(api: Api, user) -> None:
    err(
        await api.post("/api/v1/situations/contribute", json={"context": "c", "question": "q"}), 401
    )
    err(
        await api.post(
            "/api/v1/situations/contribute", json={"context": "", "question": "q"}, user=user
        ),
        422,
    )
    err(
        await api.post(
            "/api/v1/situations/contribute",
            json={"context": "c", "question": "q", "topic_id": 987654321},
            user=user,
        ),
        422,
    )


async def test_contributed_lists_the_callers_contributions(api: Api, new_user) -> None:
    """Deliberate difference 2: it works (it always failed with 500)."""
    me = new_user()
    made = ok(
        await api.post(
            "/api/v1/situations/contribute",
            json={"context": "mine", "question": "q", "image_url": ""},
            user=me,
        ),
        "Situation contributed successfully",
    )
    await _create(api, me)  # not contributed
    data = ok(
        await api.get("/api/v1/situations/contributed", user=me),
        "Contributed situations retrieved successfully",
    )
    assert [d["id"] for d in data] == [made["id"]]
    item = data[0]
    assert set(item) == FEED_ITEM - {"user_reaction"}
    assert set(item["stats"]) == STATS
    assert item["user"] == public_user(me)
    assert FEED_TIME.match(item["created_at"])
    err(await api.get("/api/v1/situations/contributed"), 401)


# ---- update / delete --------------------------------------------------------------------------


async def test_update_situation_subsets(api: Api, user, topic_id) -> None:
    made = await _create(api, user)
    data = ok(
        await api.put(f"/api/v1/situations/{made['id']}", json={"context": "new ctx"}, user=user),
        "Situation updated successfully",
    )
    assert set(data) == SITUATION_OUT
    assert (data["context"], data["question"]) == ("new ctx", made["question"])
    data = ok(
        await api.put(
            f"/api/v1/situations/{made['id']}",
            json={"question": "new q", "topic_id": topic_id, "image_url": "https://img.test/x.png"},
            user=user,
        ),
        "Situation updated successfully",
    )
    assert (data["context"], data["question"], data["topic_id"]) == ("new ctx", "new q", topic_id)


async def test_update_situation_errors(api: Api, user, other) -> None:
    made = await _create(api, user)
    sid = made["id"]
    err(await api.put(f"/api/v1/situations/{sid}", json={"context": "x"}), 401)
    err(await api.put(f"/api/v1/situations/{sid}", json={"context": "x"}, user=other), 403)
    err(await api.put(f"/api/v1/situations/{sid}", json={"context": ""}, user=user), 422)
    err(await api.put(f"/api/v1/situations/{sid}", json={"topic_id": 987654321}, user=user), 422)
    err(await api.put("/api/v1/situations/999999999", json={"context": "x"}, user=user), 404)
    unchanged = ok(await api.get(f"/api/v1/situations/{sid}"), "Situation retrieved successfully")
    assert unchanged["context"] == made["context"]


async def test_delete_situation_errors(api: Api, user, other) -> None:
    made = await _create(api, user)
    err(await api.delete(f"/api/v1/situations/{made['id']}"), 401)
    err(await api.delete(f"/api/v1/situations/{made['id']}", user=other), 403)
    err(await api.delete("/api/v1/situations/999999999", user=user), 404)
    ok(await api.get(f"/api/v1/situations/{made['id']}"), "Situation retrieved successfully")


async def test_delete_situation_removes_its_children(api: Api, user, other, db) -> None:
    """Deliberate difference 8: comments, reactions and answers go with it (no FK 500)."""
    made = await _create(api, user)
    sid = made["id"]
    ok(
        await api.post(f"/api/v1/situations/{sid}/comments", json={"content": "vui"}, user=other),
        "Comment created successfully",
    )
    ok(
        await api.post(
            f"/api/v1/situations/{sid}/reactions", json={"reaction_type": "upvote"}, user=other
        ),
        "Reaction created successfully",
    )
    db.execute(
        "INSERT INTO answers (situation_id, user_id, answer_text, scores, reasoning) "
        "VALUES (%s, %s, 'a', '{}', '{}')",
        (sid, other.id),
    )
    assert (
        ok(
            await api.delete(f"/api/v1/situations/{sid}", user=user),
            "Situation deleted successfully",
        )
        is None
    )
    err(await api.get(f"/api/v1/situations/{sid}"), 404)
    for table in ("comments", "reactions", "answers"):
        query = f"SELECT count(*) FROM {table} WHERE situation_id = %s"  # noqa: S608
        (n,) = db.execute(query, (sid,)).fetchone()
        assert n == 0, table


# ---- comments under a situation --------------------------------------------------------------


async def test_situation_comments(api: Api, user, other) -> None:
    made = await _create(api, user)
    sid = made["id"]
    created = ok(
        await api.post(
            f"/api/v1/situations/{sid}/comments", json={"content": "Hôm nay thật vui"}, user=other
        ),
        "Comment created successfully",
    )
    assert set(created) == COMMENT_OUT
    assert created["user"] == public_user(other)
    assert created["situation_id"] == sid
    assert created["sentiment_analysis"]["sentiment"] == "positive"
    listed = ok(
        await api.get(f"/api/v1/situations/{sid}/comments"), "Comments retrieved successfully"
    )
    assert [c["id"] for c in listed] == [created["id"]]
    assert set(listed[0]) == COMMENT_OUT
    assert_no_email(listed, other.email, user.email)


async def test_situation_comments_errors(api: Api, user) -> None:
    made = await _create(api, user)
    sid = made["id"]
    err(await api.post(f"/api/v1/situations/{sid}/comments", json={"content": "x"}), 401)
    err(await api.post(f"/api/v1/situations/{sid}/comments", json={"content": ""}, user=user), 422)
    err(
        await api.post("/api/v1/situations/999999999/comments", json={"content": "x"}, user=user),
        404,
    )
    resp = await api.get("/api/v1/situations/999999999/comments")
    if resp.status_code == 404:
        err(resp, 404)
    else:
        assert ok(resp, "Comments retrieved successfully") == []


# ---- reactions ------------------------------------------------------------------------------


async def test_reactions_one_per_user_and_type_changes(api: Api, user, other, db) -> None:
    made = await _create(api, user)
    sid = made["id"]
    first = ok(
        await api.post(
            f"/api/v1/situations/{sid}/reactions", json={"reaction_type": "upvote"}, user=other
        ),
        "Reaction created successfully",
    )
    assert set(first) == REACTION_OUT
    assert first["reaction_type"] == "upvote"
    assert first["user"] == public_user(other)
    second = ok(
        await api.post(
            f"/api/v1/situations/{sid}/reactions", json={"reaction_type": "downvote"}, user=other
        ),
        "Reaction created successfully",
    )
    assert second["reaction_type"] == "downvote"
    listed = ok(
        await api.get(f"/api/v1/situations/{sid}/reactions"), "Reactions retrieved successfully"
    )
    assert len(listed) == 1
    assert listed[0]["reaction_type"] == "downvote"
    assert set(listed[0]) == REACTION_OUT
    assert_no_email(listed, other.email, user.email)
    (n,) = db.execute(
        "SELECT count(*) FROM reactions WHERE situation_id = %s AND user_id = %s", (sid, other.id)
    ).fetchone()
    assert n == 1


async def test_one_reaction_per_user_is_enforced_by_the_database(api: Api, user, db) -> None:
    """Deliberate difference 6."""
    made = await _create(api, user)
    db.execute(
        "INSERT INTO reactions (situation_id, user_id, reaction_type) VALUES (%s, %s, 'upvote')",
        (made["id"], user.id),
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(
            "INSERT INTO reactions (situation_id, user_id, reaction_type) "
            "VALUES (%s, %s, 'downvote')",
            (made["id"], user.id),
        )


@pytest.mark.parametrize("body", [{"reaction_type": "love"}, {"reaction_type": ""}, {}])
async def test_reaction_type_is_validated(api: Api, user, body) -> None:
    made = await _create(api, user)
    err(await api.post(f"/api/v1/situations/{made['id']}/reactions", json=body, user=user), 422)


async def test_reaction_errors(api: Api, user) -> None:
    made = await _create(api, user)
    sid = made["id"]
    err(
        await api.post(f"/api/v1/situations/{sid}/reactions", json={"reaction_type": "upvote"}), 401
    )
    err(
        await api.post(
            "/api/v1/situations/999999999/reactions", json={"reaction_type": "upvote"}, user=user
        ),
        404,
    )
    err(await api.delete(f"/api/v1/situations/{sid}/reactions"), 401)


async def test_delete_reaction(api: Api, user, other) -> None:
    made = await _create(api, user)
    sid = made["id"]
    url = f"/api/v1/situations/{sid}/reactions"
    ok(
        await api.post(url, json={"reaction_type": "upvote"}, user=other),
        "Reaction created successfully",
    )
    assert ok(await api.delete(url, user=other), "Reaction deleted successfully") is None
    assert ok(await api.get(url), "Reactions retrieved successfully") == []


async def test_delete_reaction_restricted_to_a_type(api: Api, user, other) -> None:
    made = await _create(api, user)
    url = f"/api/v1/situations/{made['id']}/reactions"
    ok(
        await api.post(url, json={"reaction_type": "downvote"}, user=other),
        "Reaction created successfully",
    )
    resp = await api.request("DELETE", url, json={"reaction_type": "upvote"}, user=other)
    assert resp.status_code in (200, 404), resp.text
    still = ok(await api.get(url), "Reactions retrieved successfully")
    assert [r["reaction_type"] for r in still] == ["downvote"]
    resp = await api.request("DELETE", url, json={"reaction_type": "downvote"}, user=other)
    assert ok(resp, "Reaction deleted successfully") is None
    assert ok(await api.get(url), "Reactions retrieved successfully") == []
    bad = await api.request("DELETE", url, json={"reaction_type": "love"}, user=other)
    err(bad, 422)


async def test_reactions_of_an_unknown_situation(api: Api) -> None:
    resp = await api.get("/api/v1/situations/999999999/reactions")
    if resp.status_code == 404:
        err(resp, 404)
    else:
        assert ok(resp, "Reactions retrieved successfully") == []


async def test_unstorable_values_are_422_not_500(api: Api, user) -> None:
    """Deliberate difference 3 (found by the fuzzer): NUL bytes, lone surrogates, huge ids."""
    for body in (
        {"context": "nul \u0000 byte", "question": "q"},
        {"context": "c", "question": "lone \ud800 surrogate"},
    ):
        resp = await api.post(
            "/api/v1/situations/",
            content=json_bytes(body),
            headers={"Content-Type": "application/json"},
            user=user,
        )
        assert resp.status_code in (400, 422), resp.text
        err(resp, resp.status_code)
    for path in ("/api/v1/situations/99999999999999999999", "/api/v1/topics/2147483648"):
        resp = await api.get(path)
        assert resp.status_code in (404, 422), (path, resp.text)
        err(resp, resp.status_code)


def json_bytes(obj) -> bytes:
    import json

    return json.dumps(obj).encode()  # ensure_ascii keeps the lone surrogate as \ud800
