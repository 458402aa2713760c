"""/api/v1/analysis (all routes need auth)"""
# Path ids are declared `:str` and typed `int`: a non-integer id is a 422, not a 404.

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from eq_backend.deadline import DEADLINE_ADDS
from eq_backend.deps import provide_caller_id
from eq_backend.domain.analysis.schemas import AnalyzeIn, AnswerOut, SentimentIn
from eq_backend.domain.comments.sentiment import Sentiment, score_sentiment
from eq_backend.envelope import Envelope, ok
from eq_backend.services import services
from eq_backend.types import PathId


class AnalysisController(Controller):
    path = "/api/v1/analysis"
    tags = ["analysis"]  # noqa: RUF012
    dependencies = {"caller_id": Provide(provide_caller_id)}  # noqa: RUF012

    # The LLM call has its own deadline, added to the request's (eq_backend.deadline).
    @post("/analyze", status_code=200, opt={DEADLINE_ADDS: "openai_timeout_seconds"})
    async def analyze(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        data: JSONBody[AnalyzeIn],
    ) -> Envelope[AnswerOut]:
        answer = await services(request).analysis.analyze(
            caller_id, data.situation_id, data.answer_text
        )
        return ok("Answer analyzed successfully", answer)

    @post("/analyze-sentiment", status_code=200, sync_to_thread=False)
    def analyze_sentiment(
        self, caller_id: NamedDependency[int], data: JSONBody[SentimentIn]
    ) -> Envelope[Sentiment]:
        return ok("Sentiment analyzed successfully", score_sentiment(data.content))

    @get("/situations/{situation_id:str}/answers")
    async def answers(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        situation_id: PathId,
    ) -> Envelope[list[AnswerOut]]:
        return ok(
            "Answers retrieved successfully",
            await services(request).analysis.answers_for(situation_id),
        )
