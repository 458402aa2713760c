"""/api/v1/comments"""
# Path ids are declared `:str` and typed `int`: a non-integer id is a 422, not a 404.

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from eq_backend.deps import provide_caller_id
from eq_backend.domain.comments.schemas import (
    CommentIn,
    CommentOut,
    CommentUpdate,
    CommentWithSituationIn,
)
from eq_backend.envelope import Envelope, ok
from eq_backend.services import services
from eq_backend.types import PathId
from eq_backend.write_limits import limit_writes

_AUTH = {"caller_id": Provide(provide_caller_id)}


class CommentController(Controller):
    path = "/api/v1/comments"
    tags = ["comments"]  # noqa: RUF012

    @get("/situations/{situation_id:str}/comments")
    async def list_for_situation(
        self, request: Request[Any, Any, Any], situation_id: PathId
    ) -> Envelope[list[CommentOut]]:
        return ok(
            "Comments retrieved successfully",
            await services(request).comments.for_situation(situation_id),
        )

    @post(
        "/situations/{situation_id:str}/comments",
        status_code=200,
        dependencies=_AUTH,
        guards=[limit_writes("comments")],
    )
    async def create_for_situation(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        situation_id: PathId,
        data: JSONBody[CommentIn],
    ) -> Envelope[CommentOut]:
        created = await services(request).comments.create(caller_id, situation_id, data.content)
        return ok("Comment created successfully", created)

    @post(
        "/situations/comments",
        status_code=200,
        dependencies=_AUTH,
        guards=[limit_writes("comments")],
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        data: JSONBody[CommentWithSituationIn],
    ) -> Envelope[CommentOut]:
        created = await services(request).comments.create(
            caller_id, data.situation_id, data.content
        )
        return ok("Comment created successfully", created)

    @get("/{comment_id:str}")
    async def get_comment(
        self, request: Request[Any, Any, Any], comment_id: PathId
    ) -> Envelope[CommentOut]:
        return ok(
            "Comment retrieved successfully", await services(request).comments.get(comment_id)
        )

    @put("/{comment_id:str}", dependencies=_AUTH)
    async def update_comment(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        comment_id: PathId,
        data: JSONBody[CommentUpdate],
    ) -> Envelope[CommentOut]:
        updated = await services(request).comments.update(caller_id, comment_id, data.content)
        return ok("Comment updated successfully", updated)

    @delete("/{comment_id:str}", status_code=200, dependencies=_AUTH)
    async def delete_comment(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        comment_id: PathId,
    ) -> Envelope[None]:
        await services(request).comments.delete(caller_id, comment_id)
        return ok("Comment deleted successfully", None)
