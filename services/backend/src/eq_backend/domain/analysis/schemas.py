"""Answer analysis payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from eq_backend.types import DbInt

PILLARS = ("self_awareness", "empathy", "self_regulation", "communication", "decision_making")


class AnalyzeIn(msgspec.Struct):
    situation_id: DbInt
    answer_text: Annotated[str, msgspec.Meta(min_length=1)]


class SentimentIn(msgspec.Struct):
    content: Annotated[str, msgspec.Meta(min_length=1)]


class Scores(msgspec.Struct):
    self_awareness: float
    empathy: float
    self_regulation: float
    communication: float
    decision_making: float


class Reasoning(msgspec.Struct):
    self_awareness: str
    empathy: str
    self_regulation: str
    communication: str
    decision_making: str


class AnswerOut(msgspec.Struct):
    id: int
    situation_id: int | None
    answer_text: str
    scores: Scores
    reasoning: Reasoning
    question: str | None
    context: str | None
    created_at: datetime
