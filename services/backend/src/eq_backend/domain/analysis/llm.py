"""Scoring an answer through an OpenAI-compatible chat-completions API.

Any failure of the model's service — unreachable, timeout, non-2xx, a reply without a
valid JSON object — is a 502 with the envelope, never a 500.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import msgspec

from eq_backend.bounded import OutboundFailure, bounded_request
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


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _decode(text: str) -> Any:
    """msgspec's decoder: linear in the text; too deep a nesting is a RecursionError."""
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return None


def first_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object a model's reply carries: the whole reply, else its first fenced
    block, else the span from its first `{` to its last `}`.

    A constant number of linear parses, whatever the reply: trying every `{` in turn
    costs the square of the reply's length (a reply of 200,000 `{` froze the server).
    """
    stripped = text.strip()
    candidates = [stripped]
    fence = _FENCE.search(stripped)
    if fence:
        candidates.append(fence.group(1).strip())
    first, last = stripped.find("{"), stripped.rfind("}")
    if 0 <= first < last:
        candidates.append(stripped[first : last + 1])
    for candidate in candidates:
        value = _decode(candidate)
        if isinstance(value, dict):
            return value
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


def _unusable(reason: str) -> BadGateway:
    logger.warning("analysis reply unusable: %s", reason)
    return BadGateway(
        "Analysis service returned an invalid reply", errors=[f"unusable reply: {reason}"]
    )


def _reply_content(body: bytes) -> str:
    try:
        reply = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise _unusable("the body is not JSON") from None
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise _unusable("no choices[0].message.content") from None
    if not isinstance(content, str):
        raise _unusable("content is not text")
    return content


async def evaluate_answer(
    http: httpx.AsyncClient, settings: Settings, context: str, question: str, answer: str
) -> tuple[dict[str, float], dict[str, str]]:
    """Ask the model; return validated (scores, reasoning) or raise BadGateway.

    The whole call, reply included, gets OPENAI_TIMEOUT_SECONDS and at most
    OPENAI_MAX_REPLY_BYTES."""
    url = settings.openai_base_url.rstrip("/") + "/chat/completions"
    payload = {
        "model": settings.openai_model,
        "temperature": 0.3,
        "messages": build_messages(context, question, answer),
    }
    headers = {"Authorization": f"Bearer {settings.openai_api_key}"}
    try:
        reply = await bounded_request(
            http,
            "POST",
            url,
            json=payload,
            headers=headers,
            deadline_seconds=settings.openai_timeout_seconds,
            max_bytes=settings.openai_max_reply_bytes,
        )
    except OutboundFailure as exc:
        logger.warning("analysis service failed: %s", exc)
        raise BadGateway(
            "Analysis service unavailable", errors=[f"the analysis service: {exc}"]
        ) from None
    if reply.status_code >= 400:
        logger.warning("analysis service answered %s", reply.status_code)
        raise BadGateway(
            "Analysis service unavailable",
            errors=[f"the analysis service answered HTTP {reply.status_code}"],
        )
    found = first_json_object(_reply_content(reply.body))
    if found is None:
        raise _unusable("no JSON object in the reply")
    try:
        return validate_evaluation(found)
    except ValueError as exc:
        raise _unusable(str(exc)) from None
