"""/api/v1/users: list, me, search, profile."""

import pytest
from eqtest.api import Api, assert_no_email, create_user, err, ok, public_user


@pytest.fixture(scope="module")
def people(db):
    tag = "Zebrafinch"
    return [create_user(db, name=f"{tag} {i:02d}") for i in range(12)]


async def test_list_users_pages_and_shapes(api: Api, user, people) -> None:
    data = ok(
        await api.get(
            "/api/v1/users/", params={"search": "zebrafinch", "page": 1, "size": 5}, user=user
        ),
        "Users retrieved successfully",
    )
    assert len(data) == 5
    for item in data:
        assert set(item) == {"id", "name", "picture"}
    second = ok(
        await api.get(
            "/api/v1/users", params={"search": "ZEBRAFINCH", "page": 3, "size": 5}, user=user
        ),
        "Users retrieved successfully",
    )
    assert len(second) == 2
    all_ids = {p.id for p in people}
    assert {i["id"] for i in data} <= all_ids


async def test_list_users_defaults_to_ten(api: Api, user, people) -> None:
    data = ok(await api.get("/api/v1/users/", user=user), "Users retrieved successfully")
    assert len(data) == 10


async def test_list_users_needs_auth(api: Api) -> None:
    err(await api.get("/api/v1/users/"), 401)
    err(await api.get("/api/v1/users"), 401)


@pytest.mark.parametrize(
    "params",
    [{"search": "a"}, {"page": 0}, {"size": 0}, {"size": 101}, {"page": "x"}],
)
async def test_list_users_validates_query(api: Api, user, params) -> None:
    err(await api.get("/api/v1/users/", params=params, user=user), 422)


async def test_me(api: Api, user) -> None:
    data = ok(await api.get("/api/v1/users/me", user=user), "Current user retrieved successfully")
    assert data == {"id": user.id, "email": user.email, "name": user.name, "picture": user.picture}


async def test_me_needs_auth(api: Api) -> None:
    err(await api.get("/api/v1/users/me"), 401)


async def test_search_is_public_and_case_insensitive(api: Api, people) -> None:
    data = ok(
        await api.get("/api/v1/users/search", params={"query": "zEbRa", "limit": 3}),
        "Users search completed successfully",
    )
    assert len(data) == 3
    for item in data:
        assert set(item) == {"id", "name", "picture"}
    assert_no_email(data, *(p.email for p in people))
    default = ok(
        await api.get("/api/v1/users/search", params={"query": "zebrafinch"}),
        "Users search completed successfully",
    )
    assert len(default) == 10


@pytest.mark.parametrize(
    "params", [{}, {"query": "z"}, {"query": "zebra", "limit": 0}, {"query": "zebra", "limit": 101}]
)
async def test_search_validates_query(api: Api, params) -> None:
    err(await api.get("/api/v1/users/search", params=params), 422)


async def test_profile_of_another_user_has_no_email(api: Api, user, db) -> None:
    """Deliberate difference 13: another user's profile carries no `email` field at all."""
    target = create_user(db, name="Profiled", bio="I like tests")
    data = ok(
        await api.get(f"/api/v1/users/{target.id}", user=user),
        "User profile retrieved successfully",
    )
    assert data == {
        "id": target.id,
        "name": "Profiled",
        "picture": target.picture,
        "bio": "I like tests",
    }
    assert_no_email(data, target.email)


async def test_own_profile_has_the_email(api: Api, user) -> None:
    own = ok(
        await api.get(f"/api/v1/users/{user.id}", user=user), "User profile retrieved successfully"
    )
    assert own == {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "picture": user.picture,
        "bio": None,
    }


async def test_profile_needs_auth_404_and_422(api: Api, user) -> None:
    err(await api.get(f"/api/v1/users/{user.id}"), 401)
    err(await api.get("/api/v1/users/999999999", user=user), 404)
    err(await api.get("/api/v1/users/not-a-number", user=user), 422)


async def test_public_user_shape_helper_matches_me(api: Api, user) -> None:
    me = ok(await api.get("/api/v1/users/me", user=user), "Current user retrieved successfully")
    assert {k: me[k] for k in ("id", "name", "picture")} == public_user(user)
