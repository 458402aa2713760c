"""Answer analysis payloads."""

from __future__ import annotations

from datetime import datetime

import msgspec

from eq_backend.text_limits import AnswerText, SentimentText
from eq_backend.types import DbInt

PILLARS = ("self_awareness", "empathy", "self_regulation", "communication", "decision_making")


class AnalyzeIn(msgspec.Struct):
    situation_id: DbInt
    answer_text: AnswerText


class SentimentIn(msgspec.Struct):
    content: SentimentText


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
