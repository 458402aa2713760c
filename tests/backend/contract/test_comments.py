"""/api/v1/comments and the sentiment scoring that runs on every create/update."""

import pytest
from eqtest.api import Api, assert_no_email, err, ok, public_user

COMMENT_OUT = {
    "content",
    "situation_id",
    "id",
    "user_id",
    "sentiment_analysis",
    "created_at",
    "user",
}
SENTIMENT = {"sentiment", "score", "severity", "warning", "suggestions", "analysis"}

POSITIVE_SUGGESTIONS = [
    "Tuyệt vời! Hãy lan tỏa năng lượng tích cực này",
    "Chia sẻ niềm vui với mọi người xung quanh",
    "Ghi nhớ cảm giác này để vượt qua khó khăn sau này",
]
NEUTRAL_SUGGESTIONS = [
    "Hãy chia sẻ thêm về cảm xúc của bạn",
    "Thử bày tỏ rõ ràng hơn về suy nghĩ của mình",
]
HIGH_SUGGESTIONS = [
    "Hít thở sâu và thư giãn một chút",
    "Chia sẻ với bạn bè hoặc người thân",
    "Tập trung vào những điều tích cực",
    "Tìm hoạt động giải trí để thư giãn",
]
MEDIUM_SUGGESTIONS = [
    "Thử nhìn vấn đề từ góc độ khác",
    "Tập trung vào giải pháp thay vì vấn đề",
    "Chia sẻ để được lắng nghe và hỗ trợ",
]

# (text, sentiment, score, severity, warning, suggestions, (pos, neg, words))
CASES = [
    ("Hôm nay thật VUI", "positive", 0.25, "low", None, POSITIVE_SUGGESTIONS, (1, 0, 4)),
    ("vuitốt", "positive", 1.0, "low", None, POSITIVE_SUGGESTIONS, (2, 0, 1)),  # clamped
    ("hôm nay đi làm", "neutral", 0.0, "low", None, NEUTRAL_SUGGESTIONS, (0, 0, 4)),
    (
        "tôi hơi buồn hôm nay",
        "negative",
        -0.2,
        "medium",
        "💡 Có vẻ bạn đang hơi tiêu cực. Mọi thứ sẽ ổn thôi!",
        MEDIUM_SUGGESTIONS,
        (0, 1, 5),
    ),
    (
        "Buồn chán stress ghét lo lắng",
        "negative",
        -5 / 6,
        "high",
        "⚠️ Phát hiện dấu hiệu stress/tiêu cực cao.",
        HIGH_SUGGESTIONS,
        (0, 5, 6),
    ),
    (
        "một hai ba bốn năm sáu bảy tám chín mười tốt",
        "neutral",
        1 / 11,
        "low",
        None,
        NEUTRAL_SUGGESTIONS,
        (1, 0, 11),
    ),
]


def check_sentiment(got: dict, case: tuple) -> None:
    _, sentiment, score, severity, warning, suggestions, (pos, neg, words) = case
    assert set(got) == SENTIMENT
    assert got["sentiment"] == sentiment
    assert got["score"] == pytest.approx(score, abs=1e-6)
    assert got["severity"] == severity
    assert got["warning"] == warning
    assert got["suggestions"] == suggestions
    assert got["analysis"] == {"positive_words": pos, "negative_words": neg, "total_words": words}


@pytest.fixture(scope="module")
async def situation(api: Api, db) -> int:
    from eqtest.api import create_user

    owner = create_user(db, name="Situation Owner")
    data = ok(
        await api.post("/api/v1/situations/", json={"context": "c", "question": "q"}, user=owner),
        "Situation created successfully",
    )
    return data["id"]


@pytest.mark.parametrize("case", CASES, ids=[c[0][:20] for c in CASES])
async def test_sentiment_of_a_new_comment(api: Api, user, situation, case) -> None:
    data = ok(
        await api.post(
            f"/api/v1/comments/situations/{situation}/comments",
            json={"content": case[0]},
            user=user,
        ),
        "Comment created successfully",
    )
    assert set(data) == COMMENT_OUT
    check_sentiment(data["sentiment_analysis"], case)


@pytest.mark.parametrize("case", CASES, ids=[c[0][:20] for c in CASES])
async def test_analyze_sentiment_endpoint(api: Api, user, case) -> None:
    data = ok(
        await api.post("/api/v1/analysis/analyze-sentiment", json={"content": case[0]}, user=user),
        "Sentiment analyzed successfully",
    )
    check_sentiment(data, case)


async def test_comment_routes(api: Api, user, other, situation) -> None:
    base = f"/api/v1/comments/situations/{situation}/comments"
    a = ok(
        await api.post(base, json={"content": "first"}, user=user), "Comment created successfully"
    )
    b = ok(
        await api.post(
            "/api/v1/comments/situations/comments",
            json={"content": "second", "situation_id": situation},
            user=other,
        ),
        "Comment created successfully",
    )
    assert a["user"] == public_user(user)
    assert b["user"] == public_user(other)
    assert b["situation_id"] == situation
    listed = ok(await api.get(base), "Comments retrieved successfully")
    ids = [c["id"] for c in listed]
    assert a["id"] in ids
    assert b["id"] in ids
    for c in listed:
        assert set(c) == COMMENT_OUT
        assert set(c["user"]) == {"id", "name", "picture"}
    assert_no_email(listed, user.email, other.email)
    got = ok(await api.get(f"/api/v1/comments/{a['id']}"), "Comment retrieved successfully")
    assert got == a


async def test_comment_update_rescores_and_checks_ownership(
    api: Api, user, other, situation
) -> None:
    c = ok(
        await api.post(
            f"/api/v1/comments/situations/{situation}/comments",
            json={"content": "hôm nay đi làm"},
            user=user,
        ),
        "Comment created successfully",
    )
    assert c["sentiment_analysis"]["sentiment"] == "neutral"
    url = f"/api/v1/comments/{c['id']}"
    err(await api.put(url, json={"content": "x"}), 401)
    err(await api.put(url, json={"content": "x"}, user=other), 403)
    err(await api.put(url, json={"content": ""}, user=user), 422)
    err(await api.put("/api/v1/comments/999999999", json={"content": "x"}, user=user), 404)
    updated = ok(
        await api.put(url, json={"content": "thật vui"}, user=user), "Comment updated successfully"
    )
    assert updated["content"] == "thật vui"
    assert updated["sentiment_analysis"]["sentiment"] == "positive"
    same = ok(await api.put(url, json={}, user=user), "Comment updated successfully")
    assert same["content"] == "thật vui"


async def test_comment_delete_checks_ownership(api: Api, user, other, situation) -> None:
    c = ok(
        await api.post(
            f"/api/v1/comments/situations/{situation}/comments", json={"content": "bye"}, user=user
        ),
        "Comment created successfully",
    )
    url = f"/api/v1/comments/{c['id']}"
    err(await api.delete(url), 401)
    err(await api.delete(url, user=other), 403)
    assert ok(await api.delete(url, user=user), "Comment deleted successfully") is None
    err(await api.get(url), 404)
    err(await api.delete(url, user=user), 404)


async def test_comment_errors(api: Api, user, situation) -> None:
    base = f"/api/v1/comments/situations/{situation}/comments"
    err(await api.post(base, json={"content": "x"}), 401)
    err(await api.post(base, json={"content": ""}, user=user), 422)
    err(await api.post(base, json={}, user=user), 422)
    err(
        await api.post(
            "/api/v1/comments/situations/999999999/comments", json={"content": "x"}, user=user
        ),
        404,
    )
    err(
        await api.post(
            "/api/v1/comments/situations/comments",
            json={"content": "x", "situation_id": 999999999},
            user=user,
        ),
        404,
    )
    err(
        await api.post("/api/v1/comments/situations/comments", json={"content": "x"}, user=user),
        422,
    )
    err(await api.get("/api/v1/comments/999999999"), 404)
    err(await api.get("/api/v1/comments/abc"), 422)
    err(await api.post("/api/v1/analysis/analyze-sentiment", json={"content": "x"}), 401)
    err(await api.post("/api/v1/analysis/analyze-sentiment", json={"content": ""}, user=user), 422)
