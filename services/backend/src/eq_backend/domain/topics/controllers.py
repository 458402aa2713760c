"""/api/v1/topics: anyone reads; only administrators (ADMIN_EMAILS) write."""
# Path ids are declared `:str` and typed `int` in the handler: a non-integer id is then a
# 422 validation error instead of an unmatched route (404).

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from eq_backend.authz import ADMIN_ONLY
from eq_backend.domain.situations.schemas import SituationOut
from eq_backend.domain.topics.schemas import TopicIn, TopicOut
from eq_backend.domain.topics.services import TopicService
from eq_backend.envelope import Envelope, ok
from eq_backend.types import PathId


class TopicController(Controller):
    path = "/api/v1/topics"
    tags = ["topics"]  # noqa: RUF012

    @get("/")
    async def list_topics(self, request: Request[Any, Any, Any]) -> Envelope[list[TopicOut]]:
        # Hot route: the service comes from app state, not through DI.
        topic_service: TopicService = request.app.state.topic_service
        return ok("Topics retrieved successfully", await topic_service.all())

    @get("/{topic_id:str}")
    async def get_topic(
        self, topic_service: NamedDependency[TopicService], topic_id: PathId
    ) -> Envelope[TopicOut]:
        return ok("Topic retrieved successfully", await topic_service.get(topic_id))

    @post("/", status_code=200, dependencies=ADMIN_ONLY)
    async def create_topic(
        self,
        topic_service: NamedDependency[TopicService],
        admin_id: NamedDependency[int],
        data: JSONBody[TopicIn],
    ) -> Envelope[TopicOut]:
        return ok("Topic created successfully", await topic_service.create(data.name))

    @put("/{topic_id:str}", dependencies=ADMIN_ONLY)
    async def update_topic(
        self,
        topic_service: NamedDependency[TopicService],
        admin_id: NamedDependency[int],
        topic_id: PathId,
        data: JSONBody[TopicIn],
    ) -> Envelope[TopicOut]:
        return ok("Topic updated successfully", await topic_service.update(topic_id, data.name))

    @delete("/{topic_id:str}", status_code=200, dependencies=ADMIN_ONLY)
    async def delete_topic(
        self,
        topic_service: NamedDependency[TopicService],
        admin_id: NamedDependency[int],
        topic_id: PathId,
    ) -> Envelope[None]:
        await topic_service.delete(topic_id)
        return ok("Topic deleted successfully", None)

    @get("/{topic_id:str}/situations")
    async def topic_situations(
        self, topic_service: NamedDependency[TopicService], topic_id: PathId
    ) -> Envelope[list[SituationOut]]:
        return ok("Situations retrieved successfully", await topic_service.situations(topic_id))
