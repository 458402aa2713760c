"""Analysing answers: look up the situation, ask the model, store the answer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from eq_backend.db.engine import Database
from eq_backend.db.tables import answers, situations
from eq_backend.db.values import as_utc, json_object
from eq_backend.domain.analysis.llm import evaluate_answer
from eq_backend.domain.analysis.schemas import PILLARS, AnswerOut, Reasoning, Scores
from eq_backend.domain.situations.services import situation_not_found
from eq_backend.errors import TooManyRequests
from eq_backend.outbound import OutboundHttp
from eq_backend.redis_state import RedisState
from eq_backend.settings import Settings


def _scores(value: Any) -> Scores:
    data = json_object(value)
    data = data if isinstance(data, dict) else {}
    return Scores(
        **{p: data.get(p, 0) if isinstance(data.get(p), int | float) else 0 for p in PILLARS}
    )


def _reasoning(value: Any) -> Reasoning:
    data = json_object(value)
    data = data if isinstance(data, dict) else {}
    return Reasoning(**{p: str(data.get(p, "")) for p in PILLARS})


def _answer_out(row: Any) -> AnswerOut:
    return AnswerOut(
        id=row.id,
        situation_id=row.situation_id,
        answer_text=row.answer_text,
        scores=_scores(row.scores),
        reasoning=_reasoning(row.reasoning),
        question=row.question,
        context=row.context,
        created_at=as_utc(row.created_at),
    )


_ANSWER_COLUMNS = (
    answers.c.id,
    answers.c.situation_id,
    answers.c.answer_text,
    answers.c.scores,
    answers.c.reasoning,
    answers.c.created_at,
    situations.c.question,
    situations.c.context,
)


class AnalysisService:
    def __init__(
        self, db: Database, redis: RedisState, http: OutboundHttp, settings: Settings
    ) -> None:
        self.db = db
        self.redis = redis
        self.http = http
        self.settings = settings

    async def analyze(self, caller_id: int, situation_id: int, answer_text: str) -> AnswerOut:
        async with self.db.connect() as conn:
            situation = (
                await conn.execute(
                    select(situations.c.context, situations.c.question).where(
                        situations.c.id == situation_id
                    )
                )
            ).first()
        if situation is None:
            raise situation_not_found()
        limit, window = self.settings.analyze_rate
        allowed, retry_after = await self.redis.hit(f"analyze:{caller_id}", limit, window)
        if not allowed:
            raise TooManyRequests(
                "Too many analysis requests",
                errors=[f"at most {self.settings.analyze_rate_limit}; retry in {retry_after} s"],
                headers={"Retry-After": str(retry_after)},
            )
        scores, reasoning = await evaluate_answer(
            self.http.client, self.settings, situation.context, situation.question, answer_text
        )
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    insert(answers)
                    .values(
                        situation_id=situation_id,
                        user_id=caller_id,
                        answer_text=answer_text,
                        scores=scores,
                        reasoning=reasoning,
                    )
                    .returning(answers.c.id, answers.c.created_at)
                )
            ).one()
        return AnswerOut(
            id=row.id,
            situation_id=situation_id,
            answer_text=answer_text,
            scores=Scores(**scores),
            reasoning=Reasoning(**reasoning),
            question=situation.question,
            context=situation.context,
            created_at=as_utc(row.created_at),
        )

    async def answers_for(self, situation_id: int) -> list[AnswerOut]:
        async with self.db.connect() as conn:
            found = (
                await conn.execute(select(situations.c.id).where(situations.c.id == situation_id))
            ).first()
            if found is None:
                raise situation_not_found()
            rows = (
                await conn.execute(
                    select(*_ANSWER_COLUMNS)
                    .select_from(
                        answers.join(situations, situations.c.id == answers.c.situation_id)
                    )
                    .where(answers.c.situation_id == situation_id)
                    .order_by(answers.c.created_at, answers.c.id)
                )
            ).all()
        return [_answer_out(r) for r in rows]
