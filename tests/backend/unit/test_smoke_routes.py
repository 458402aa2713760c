"""Every resource once through the real app on SQLite (the contract tests go deeper)."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

Client = AsyncTestClient  # type: ignore[type-arg]


async def test_topics_both_slash_forms_answer_directly(client: Any) -> None:
    for path in ("/api/v1/topics", "/api/v1/topics/"):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 200
        body = response.json()
        assert body["message"] == "Topics retrieved successfully"
        assert [t["name"] for t in body["data"]] == ["Tình yêu", "Công sở", "Gia đình", "Bạn bè"]


async def test_non_integer_id_is_422_in_the_envelope(client: Any) -> None:
    response = await client.get("/api/v1/topics/abc")
    assert response.status_code == 422
    assert response.json()["success"] is False
    assert response.json()["errors"]


async def test_unknown_route_and_method_use_the_envelope(client: Any) -> None:
    missing = await client.get("/nope")
    assert missing.status_code == 404
    assert set(missing.json()) == {"success", "message", "errors", "details"}
    wrong = await client.patch("/api/v1/topics/")
    assert wrong.status_code == 405
    assert wrong.json()["success"] is False


async def test_topic_writes_need_an_admin_and_duplicates_conflict(
    client: Any, ann: Any, bob: Any
) -> None:
    assert (await client.post("/api/v1/topics/", json={"name": "X"})).status_code == 401
    created = await client.post("/api/v1/topics", json={"name": "X"}, headers=ann)
    assert created.status_code == 200
    assert created.json()["data"]["name"] == "X"
    assert (await client.post("/api/v1/topics", json={"name": "X"}, headers=ann)).status_code == 409
    assert (await client.post("/api/v1/topics", json={"name": ""}, headers=ann)).status_code == 422
    assert (await client.post("/api/v1/topics", json={"name": "Y"}, headers=bob)).status_code == 403


async def test_situation_lifecycle_with_ownership(client: Any, ann: Any, bob: Any) -> None:
    created = await client.post(
        "/api/v1/situations/contribute",
        json={"topic_id": None, "context": "c", "question": "q", "image_url": ""},
        headers=ann,
    )
    assert created.status_code == 200, created.text
    situation = created.json()["data"]
    assert situation["image_url"] is None
    sid = situation["id"]
    bad_topic = await client.post(
        "/api/v1/situations/", json={"topic_id": 999, "context": "c", "question": "q"}, headers=ann
    )
    assert bad_topic.status_code == 422

    assert (
        await client.put(f"/api/v1/situations/{sid}", json={"context": "x"}, headers=bob)
    ).status_code == 403
    updated = await client.put(f"/api/v1/situations/{sid}", json={"context": "x"}, headers=ann)
    assert updated.json()["data"]["context"] == "x"

    comment = await client.post(
        f"/api/v1/situations/{sid}/comments", json={"content": "vui quá"}, headers=bob
    )
    assert comment.status_code == 200
    assert comment.json()["data"]["sentiment_analysis"]["sentiment"] == "positive"
    assert "email" not in comment.json()["data"]["user"]

    assert (
        await client.post(
            f"/api/v1/situations/{sid}/reactions", json={"reaction_type": "meh"}, headers=bob
        )
    ).status_code == 422
    await client.post(
        f"/api/v1/situations/{sid}/reactions", json={"reaction_type": "upvote"}, headers=bob
    )
    again = await client.post(
        f"/api/v1/situations/{sid}/reactions", json={"reaction_type": "downvote"}, headers=bob
    )
    assert again.json()["data"]["reaction_type"] == "downvote"

    feed = (await client.get("/api/v1/situations/feed?limit=1", headers=bob)).json()["data"]
    item = feed["items"][0]
    assert item["id"] == sid
    assert item["stats"] == {
        "comments_count": 1,
        "reactions_count": 1,
        "upvotes_count": 0,
        "downvotes_count": 1,
    }
    assert item["user_reaction"] == "downvote"
    assert feed["pagination"]["total"] == 5
    assert feed["pagination"]["has_next"] is True
    anonymous = (await client.get("/api/v1/situations/feed/?limit=1")).json()["data"]
    assert anonymous["items"][0]["user_reaction"] is None

    contributed = (await client.get("/api/v1/situations/contributed", headers=ann)).json()["data"]
    assert [c["id"] for c in contributed] == [sid]
    assert "user_reaction" not in contributed[0]

    removed = await client.request(
        "DELETE",
        f"/api/v1/situations/{sid}/reactions",
        json={"reaction_type": "upvote"},
        headers=bob,
    )
    assert removed.status_code == 404
    removed = await client.delete(f"/api/v1/situations/{sid}/reactions", headers=bob)
    assert removed.status_code == 200

    assert (await client.delete(f"/api/v1/situations/{sid}", headers=bob)).status_code == 403
    assert (await client.delete(f"/api/v1/situations/{sid}", headers=ann)).status_code == 200
    assert (await client.get(f"/api/v1/situations/{sid}")).status_code == 404


async def test_users_routes(client: Any, ann: Any) -> None:
    me = (await client.get("/api/v1/users/me", headers=ann)).json()["data"]
    assert me["email"] == "ann@example.com"
    assert (await client.get("/api/v1/users/me")).status_code == 401
    found = (await client.get("/api/v1/users/search?query=bo")).json()["data"]
    assert [u["name"] for u in found] == ["Bob"]
    assert (await client.get("/api/v1/users/search?query=b")).status_code == 422
    other = (await client.get(f"/api/v1/users/{found[0]['id']}", headers=ann)).json()["data"]
    assert other["name"] == "Bob"
    assert "email" not in other  # only the caller sees an email
    listed = await client.get("/api/v1/users/?size=101", headers=ann)
    assert listed.status_code == 422


async def test_analysis_unreachable_llm_is_502(client: Any, ann: Any) -> None:
    response = await client.post(
        "/api/v1/analysis/analyze",
        json={"situation_id": 1, "answer_text": "tôi sẽ bình tĩnh"},
        headers=ann,
    )
    assert response.status_code == 502
    assert response.json()["success"] is False
    missing = await client.post(
        "/api/v1/analysis/analyze", json={"situation_id": 999, "answer_text": "x"}, headers=ann
    )
    assert missing.status_code == 404


async def test_health_metrics_and_logout(client: Any) -> None:
    health = (await client.get("/health")).json()
    assert health["data"]["deployment"] == {"at": "", "sha": "", "image": "", "by": ""}
    assert (await client.get("/health/db")).json()["data"] == {"status": "connected"}
    metrics = await client.get("/api/v1/metrics/")
    assert "active_users" in metrics.text
    logout = await client.post("/api/v1/auth/logout")
    assert logout.json() == {"success": True, "message": "Logged out successfully", "data": None}
    cookie = logout.headers["set-cookie"].lower()
    assert "access_token=" in cookie
    assert "max-age=0" in cookie
    assert "samesite=lax" in cookie
    assert "secure" in cookie
