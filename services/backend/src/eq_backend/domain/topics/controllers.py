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
from eq_backend.envelope import Envelope, ok
from eq_backend.services import services
from eq_backend.types import PathId


class TopicController(Controller):
    path = "/api/v1/topics"
    tags = ["topics"]  # noqa: RUF012

    @get("/")
    async def list_topics(self, request: Request[Any, Any, Any]) -> Envelope[list[TopicOut]]:
        return ok("Topics retrieved successfully", await services(request).topics.all())

    @get("/{topic_id:str}")
    async def get_topic(
        self, request: Request[Any, Any, Any], topic_id: PathId
    ) -> Envelope[TopicOut]:
        return ok("Topic retrieved successfully", await services(request).topics.get(topic_id))

    @post("/", status_code=200, dependencies=ADMIN_ONLY)
    async def create_topic(
        self,
        request: Request[Any, Any, Any],
        admin_id: NamedDependency[int],
        data: JSONBody[TopicIn],
    ) -> Envelope[TopicOut]:
        return ok("Topic created successfully", await services(request).topics.create(data.name))

    @put("/{topic_id:str}", dependencies=ADMIN_ONLY)
    async def update_topic(
        self,
        request: Request[Any, Any, Any],
        admin_id: NamedDependency[int],
        topic_id: PathId,
        data: JSONBody[TopicIn],
    ) -> Envelope[TopicOut]:
        return ok(
            "Topic updated successfully", await services(request).topics.update(topic_id, data.name)
        )

    @delete("/{topic_id:str}", status_code=200, dependencies=ADMIN_ONLY)
    async def delete_topic(
        self,
        request: Request[Any, Any, Any],
        admin_id: NamedDependency[int],
        topic_id: PathId,
    ) -> Envelope[None]:
        await services(request).topics.delete(topic_id)
        return ok("Topic deleted successfully", None)

    @get("/{topic_id:str}/situations")
    async def topic_situations(
        self, request: Request[Any, Any, Any], topic_id: PathId
    ) -> Envelope[list[SituationOut]]:
        return ok(
            "Situations retrieved successfully", await services(request).topics.situations(topic_id)
        )
