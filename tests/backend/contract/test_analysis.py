"""/api/v1/analysis: the LLM over real HTTP (and its failure modes), stored answers, rate limit."""

import json

import pytest
from eq_cluster.services import free_port
from eqtest.api import Api, create_user, err, ok
from eqtest.fakes import PILLARS, FakeLlm, analysis_reply

ANSWER = {
    "id",
    "situation_id",
    "answer_text",
    "scores",
    "reasoning",
    "question",
    "context",
    "created_at",
}


@pytest.fixture(scope="module")
async def situation(api: Api, db) -> dict:
    owner = create_user(db, name="Analysis Owner")
    return ok(
        await api.post(
            "/api/v1/situations/",
            json={"context": "My friend forgot my birthday", "question": "What do you do?"},
            user=owner,
        ),
        "Situation created successfully",
    )


async def _analyze(api: Api, user, sid: int, text: str = "I would talk to them calmly"):
    return await api.post(
        "/api/v1/analysis/analyze", json={"situation_id": sid, "answer_text": text}, user=user
    )


@pytest.mark.parametrize("mode", ["ok", "extra_text"])
async def test_analyze_stores_the_scored_answer(
    api: Api, user, situation, db, llm_reset: FakeLlm, mode
) -> None:
    llm_reset.behaviour.mode = mode
    llm_reset.behaviour.reply = analysis_reply(8)
    data = ok(await _analyze(api, user, situation["id"]), "Answer analyzed successfully")
    assert set(data) == ANSWER
    assert data["scores"] == {p: 8 for p in PILLARS}
    assert data["reasoning"] == {p: f"reason for {p}" for p in PILLARS}
    assert data["question"] == situation["question"]
    assert data["context"] == situation["context"]
    assert data["situation_id"] == situation["id"]
    assert data["answer_text"] == "I would talk to them calmly"

    (req,) = llm_reset.requests
    assert req["path"].endswith("/chat/completions")
    assert req["headers"]["Authorization"] == "Bearer sk-test-key"
    body = json.loads(req["body"])
    assert body["model"] == "test-model"  # deliberate difference 9
    assert body["temperature"] == pytest.approx(0.3)
    roles = [m["role"] for m in body["messages"]]
    assert roles[0] == "system"
    user_msg = body["messages"][-1]["content"]
    assert "SITUATION: My friend forgot my birthday" in user_msg
    assert "QUESTION: What do you do?" in user_msg
    assert "ANSWER: I would talk to them calmly" in user_msg

    user_id, scores_type, reasoning_type = db.execute(
        "SELECT user_id, json_typeof(scores::json), json_typeof(reasoning::json) "
        "FROM answers WHERE id = %s",
        (data["id"],),
    ).fetchone()
    assert user_id == user.id  # deliberate difference 7
    assert (scores_type, reasoning_type) == ("object", "object")


@pytest.mark.parametrize(
    "mode", ["garbage", "bad_shape", "error500", "hangup", "not_json_body", "timeout"]
)
async def test_llm_failures_are_502(
    api: Api, user, situation, db, llm_reset: FakeLlm, mode
) -> None:
    llm_reset.behaviour.mode = mode
    llm_reset.behaviour.delay = 10 if mode == "timeout" else 0
    (before,) = db.execute("SELECT count(*) FROM answers").fetchone()
    body = err(await _analyze(api, user, situation["id"]), 502)
    text = json.dumps(body)
    assert "Traceback" not in text
    assert "sk-test-key" not in text
    (after,) = db.execute("SELECT count(*) FROM answers").fetchone()
    assert after == before


async def test_llm_unreachable_is_502(app_env, app_client_factory, db, situation) -> None:
    user = create_user(db)
    env = {**app_env, "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}
    async with app_client_factory(env) as other_api:
        err(await _analyze(other_api, user, situation["id"]), 502)


async def test_analyze_errors(api: Api, user, situation, llm_reset) -> None:
    err(await _analyze(api, None, situation["id"]), 401)
    err(await _analyze(api, user, 999999999), 404)
    err(await _analyze(api, user, situation["id"], ""), 422)
    err(await api.post("/api/v1/analysis/analyze", json={"answer_text": "x"}, user=user), 422)
    err(
        await api.post(
            "/api/v1/analysis/analyze", json={"situation_id": "abc", "answer_text": "x"}, user=user
        ),
        422,
    )
    assert llm_reset.requests == []


async def test_answers_of_a_situation_read_old_string_rows(api: Api, user, situation, db) -> None:
    sid = situation["id"]
    as_string = json.dumps(json.dumps({p: 5 for p in PILLARS}))
    reasons = json.dumps(json.dumps({p: "old" for p in PILLARS}))
    db.execute(
        "INSERT INTO answers (situation_id, user_id, answer_text, scores, reasoning) "
        "VALUES (%s, %s, 'old answer', %s, %s)",
        (sid, user.id, as_string, reasons),
    )
    data = ok(
        await api.get(f"/api/v1/analysis/situations/{sid}/answers", user=user),
        "Answers retrieved successfully",
    )
    old = [a for a in data if a["answer_text"] == "old answer"]
    assert old, data
    assert set(old[0]) == ANSWER
    assert old[0]["scores"] == {p: 5 for p in PILLARS}
    assert old[0]["reasoning"] == {p: "old" for p in PILLARS}
    err(await api.get(f"/api/v1/analysis/situations/{sid}/answers"), 401)
    missing = await api.get("/api/v1/analysis/situations/999999999/answers", user=user)
    if missing.status_code == 404:
        err(missing, 404)
    else:
        assert ok(missing, "Answers retrieved successfully") == []


async def test_analyze_is_rate_limited_per_user(
    app_env, app_client_factory, db, situation, llm_reset, redis_client
) -> None:
    env = {**app_env, "ANALYZE_RATE_LIMIT": "2/minute"}
    first, second = create_user(db), create_user(db)
    async with app_client_factory(env) as limited:
        for _ in range(2):
            ok(await _analyze(limited, first, situation["id"]), "Answer analyzed successfully")
        body = err(await _analyze(limited, first, situation["id"]), 429)
        assert body["message"]
        # another user has a budget of their own
        ok(await _analyze(limited, second, situation["id"]), "Answer analyzed successfully")
    assert len(llm_reset.requests) == 3
