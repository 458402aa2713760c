"""/api/v1/topics: CRUD by administrators, the seed topics, slash forms, 409 on duplicates."""

import time

import pytest
from eqtest.api import ADMIN_EMAIL, Api, create_user, err, ok

SEED_TOPICS = ["Tình yêu", "Công sở", "Gia đình", "Bạn bè"]


def _name() -> str:
    return f"Topic {time.time_ns()}"


async def test_list_topics_has_the_seed_ordered_by_id(api: Api) -> None:
    data = ok(await api.get("/api/v1/topics/"), "Topics retrieved successfully")
    assert isinstance(data, list)
    for item in data:
        assert set(item) == {"name", "id"}
    names = [t["name"] for t in data]
    for seed in SEED_TOPICS:
        assert seed in names
    ids = [t["id"] for t in data]
    assert ids == sorted(ids)


async def test_list_topics_without_slash_answers_directly(api: Api) -> None:
    """The frontend calls /api/v1/topics with no slash and needs an array in data."""
    resp = await api.get("/api/v1/topics")
    assert resp.status_code == 200
    assert isinstance(ok(resp, "Topics retrieved successfully"), list)


async def test_list_topics_is_capped_at_100(api: Api, admin, db) -> None:
    db.execute(
        "INSERT INTO topics (name) SELECT 'bulk ' || g FROM generate_series(1, 110) g "
        "ON CONFLICT DO NOTHING"
    )
    data = ok(await api.get("/api/v1/topics/"), "Topics retrieved successfully")
    assert len(data) == 100


@pytest.mark.parametrize("path", ["/api/v1/topics/", "/api/v1/topics"])
async def test_create_topic(api: Api, admin, path) -> None:
    name = _name()
    data = ok(await api.post(path, json={"name": name}, user=admin), "Topic created successfully")
    assert set(data) == {"name", "id"}
    assert data["name"] == name
    got = ok(await api.get(f"/api/v1/topics/{data['id']}"), "Topic retrieved successfully")
    assert got == data


async def test_create_topic_needs_auth(api: Api) -> None:
    err(await api.post("/api/v1/topics/", json={"name": _name()}), 401)


@pytest.mark.parametrize("body", [{"name": ""}, {}, {"name": 5}, {"nom": "x"}])
async def test_create_topic_validates(api: Api, admin, body) -> None:
    err(await api.post("/api/v1/topics/", json=body, user=admin), 422)


async def test_create_topic_rejects_a_non_json_body(api: Api, admin) -> None:
    resp = await api.post(
        "/api/v1/topics/",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
        user=admin,
    )
    assert resp.status_code in (400, 422)
    err(resp, resp.status_code)


async def test_duplicate_topic_name_is_409(api: Api, admin) -> None:
    name = _name()
    ok(
        await api.post("/api/v1/topics/", json={"name": name}, user=admin),
        "Topic created successfully",
    )
    body = err(await api.post("/api/v1/topics/", json={"name": name}, user=admin), 409)
    assert "Traceback" not in str(body)
    assert "IntegrityError" not in str(body)
    assert "UniqueViolation" not in str(body)


async def test_get_topic_404_and_422(api: Api) -> None:
    err(await api.get("/api/v1/topics/999999999"), 404)
    err(await api.get("/api/v1/topics/abc"), 422)


async def test_update_topic(api: Api, admin) -> None:
    created = ok(
        await api.post("/api/v1/topics/", json={"name": _name()}, user=admin),
        "Topic created successfully",
    )
    new = _name()
    data = ok(
        await api.put(f"/api/v1/topics/{created['id']}", json={"name": new}, user=admin),
        "Topic updated successfully",
    )
    assert data == {"name": new, "id": created["id"]}


async def test_update_topic_errors(api: Api, admin) -> None:
    created = ok(
        await api.post("/api/v1/topics/", json={"name": _name()}, user=admin),
        "Topic created successfully",
    )
    tid = created["id"]
    err(await api.put(f"/api/v1/topics/{tid}", json={"name": _name()}), 401)
    err(await api.put(f"/api/v1/topics/{tid}", json={"name": ""}, user=admin), 422)
    err(await api.put("/api/v1/topics/999999999", json={"name": _name()}, user=admin), 404)
    err(await api.put("/api/v1/topics/zz", json={"name": _name()}, user=admin), 422)
    taken = ok(
        await api.post("/api/v1/topics/", json={"name": _name()}, user=admin),
        "Topic created successfully",
    )
    err(await api.put(f"/api/v1/topics/{tid}", json={"name": taken["name"]}, user=admin), 409)


async def test_delete_topic(api: Api, admin) -> None:
    created = ok(
        await api.post("/api/v1/topics/", json={"name": _name()}, user=admin),
        "Topic created successfully",
    )
    tid = created["id"]
    err(await api.delete(f"/api/v1/topics/{tid}"), 401)
    assert (
        ok(await api.delete(f"/api/v1/topics/{tid}", user=admin), "Topic deleted successfully")
        is None
    )
    err(await api.get(f"/api/v1/topics/{tid}"), 404)
    err(await api.delete(f"/api/v1/topics/{tid}", user=admin), 404)


async def test_delete_topic_with_situations_does_not_500(api: Api, admin) -> None:
    created = ok(
        await api.post("/api/v1/topics/", json={"name": _name()}, user=admin),
        "Topic created successfully",
    )
    ok(
        await api.post(
            "/api/v1/situations/",
            json={"topic_id": created["id"], "context": "c", "question": "q"},
            user=admin,
        ),
        "Situation created successfully",
    )
    resp = await api.delete(f"/api/v1/topics/{created['id']}", user=admin)
    assert resp.status_code in (200, 409), resp.text
    if resp.status_code == 409:
        err(resp, 409)


async def test_topic_situations(api: Api, admin) -> None:
    topic = ok(
        await api.post("/api/v1/topics/", json={"name": _name()}, user=admin),
        "Topic created successfully",
    )
    made = [
        ok(
            await api.post(
                "/api/v1/situations/",
                json={"topic_id": topic["id"], "context": f"ctx {i}", "question": f"q {i}"},
                user=admin,
            ),
            "Situation created successfully",
        )
        for i in range(3)
    ]
    data = ok(
        await api.get(f"/api/v1/topics/{topic['id']}/situations"),
        "Situations retrieved successfully",
    )
    assert sorted(s["id"] for s in data) == sorted(m["id"] for m in made)
    for s in data:
        assert set(s) == {"topic_id", "context", "question", "id", "user_id", "created_at"}
        assert s["topic_id"] == topic["id"]


async def test_topic_situations_404(api: Api) -> None:
    resp = await api.get("/api/v1/topics/999999999/situations")
    assert resp.status_code in (200, 404)
    if resp.status_code == 404:
        err(resp, 404)
    else:
        assert ok(resp, "Situations retrieved successfully") == []


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
async def test_no_redirect_for_any_method_on_collection_routes(api: Api, admin, method) -> None:
    for path in ("/api/v1/topics", "/api/v1/situations", "/api/v1/users", "/api/v1/metrics"):
        for form in (path, path + "/"):
            resp = await api.request(method, form, user=admin, json={})
            assert resp.status_code not in (301, 302, 307, 308), (method, form, resp.status_code)
            assert "location" not in resp.headers, (method, form)


async def test_unsupported_method_is_405_in_the_envelope(api: Api, admin) -> None:
    resp = await api.request("PATCH", "/api/v1/topics/", json={"name": "x"}, user=admin)
    err(resp, 405)


async def test_unknown_route_is_404_in_the_envelope(api: Api) -> None:
    err(await api.get("/api/v1/no-such-thing"), 404)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/topics/", {"name": "not yours"}),
        ("PUT", "/api/v1/topics/{tid}", {"name": "renamed by a user"}),
        ("DELETE", "/api/v1/topics/{tid}", None),
    ],
)
async def test_topic_writes_are_403_for_users_who_are_not_administrators(
    api: Api, admin, user, method, path, body
) -> None:
    """Deliberate difference 14 (finding 4: any user could rename or delete any topic)."""
    name = _name()
    created = ok(
        await api.post("/api/v1/topics/", json={"name": name}, user=admin),
        "Topic created successfully",
    )
    url = path.format(tid=created["id"])
    resp = await api.request(method, url, json=body, user=user)
    assert err(resp, 403)["message"] == "Administrators only"
    unchanged = ok(await api.get(f"/api/v1/topics/{created['id']}"), "Topic retrieved successfully")
    assert unchanged == {"name": name, "id": created["id"]}


async def test_admin_emails_match_case_insensitively(api: Api, db) -> None:
    shouting = create_user(db, email=ADMIN_EMAIL.upper().replace("@", "+caps@"))
    resp = await api.post("/api/v1/topics/", json={"name": _name()}, user=shouting)
    err(resp, 403)  # another address, even if it looks alike


async def test_nobody_writes_topics_when_admin_emails_is_empty(
    app_env, app_client_factory, admin
) -> None:
    env = {k: v for k, v in app_env.items() if k != "ADMIN_EMAILS"}
    async with app_client_factory(env) as no_admins:
        resp = await no_admins.post("/api/v1/topics/", json={"name": _name()}, user=admin)
    err(resp, 403)
