"""Scoring an answer through an OpenAI-compatible chat-completions API.

Any failure of the model's service — unreachable, timeout, non-2xx, a reply without a
valid JSON object — is a 502 with the envelope, never a 500.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from eq_backend.domain.analysis.schemas import PILLARS
from eq_backend.errors import BadGateway
from eq_backend.settings import Settings

logger = logging.getLogger("eq_backend.llm")

SYSTEM_PROMPT = (
    "You are an expert in emotional intelligence (EQ). Evaluate the user's answer to the "
    "situation on five pillars: self_awareness, empathy, self_regulation, communication, "
    "decision_making. Reply with exactly one JSON object and nothing else, of the form "
    '{"scores": {"self_awareness": 0-10, "empathy": 0-10, "self_regulation": 0-10, '
    '"communication": 0-10, "decision_making": 0-10}, "reasoning": {"self_awareness": '
    '"...", "empathy": "...", "self_regulation": "...", "communication": "...", '
    '"decision_making": "..."}} where each score is a number from 0 to 10 and each reason '
    "is one or two sentences in the language of the answer."
)


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object embedded in `text` (models wrap JSON in prose or fences)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def validate_evaluation(value: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """Scores (numbers 0–10) and reasons (strings) for all five pillars, or ValueError."""
    scores, reasoning = value.get("scores"), value.get("reasoning")
    if not isinstance(scores, dict) or not isinstance(reasoning, dict):
        raise ValueError("reply lacks 'scores' or 'reasoning' objects")
    clean_scores: dict[str, float] = {}
    clean_reasons: dict[str, str] = {}
    for pillar in PILLARS:
        score = scores.get(pillar)
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise ValueError(f"score for {pillar} is not a number")
        if not 0 <= score <= 10:
            raise ValueError(f"score for {pillar} is outside 0-10")
        reason = reasoning.get(pillar)
        if not isinstance(reason, str):
            raise ValueError(f"reason for {pillar} is not a string")
        clean_scores[pillar] = score
        clean_reasons[pillar] = reason
    return clean_scores, clean_reasons


def build_messages(context: str, question: str, answer: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": f"SITUATION: {context}\nQUESTION: {question}\nANSWER: {answer}",
        },
    ]


async def evaluate_answer(
    http: httpx.AsyncClient, settings: Settings, context: str, question: str, answer: str
) -> tuple[dict[str, float], dict[str, str]]:
    """Ask the model; return validated (scores, reasoning) or raise BadGateway."""
    url = settings.openai_base_url.rstrip("/") + "/chat/completions"
    payload = {
        "model": settings.openai_model,
        "temperature": 0.3,
        "messages": build_messages(context, question, answer),
    }
    headers = {"Authorization": f"Bearer {settings.openai_api_key}"}
    try:
        response = await http.post(
            url, json=payload, headers=headers, timeout=settings.openai_timeout_seconds
        )
    except httpx.HTTPError as exc:
        logger.warning("analysis service unreachable: %s", type(exc).__name__)
        raise BadGateway(
            "Analysis service unavailable", errors=["the analysis service did not answer"]
        ) from None
    if response.status_code >= 400:
        logger.warning("analysis service answered %s", response.status_code)
        raise BadGateway(
            "Analysis service unavailable",
            errors=[f"the analysis service answered HTTP {response.status_code}"],
        )
    try:
        content = response.json()["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise TypeError("content is not text")
        found = first_json_object(content)
        if found is None:
            raise ValueError("no JSON object in the reply")
        return validate_evaluation(found)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        logger.warning("analysis reply unusable: %s", exc)
        raise BadGateway(
            "Analysis service returned an invalid reply", errors=[f"unusable reply: {exc}"]
        ) from None
