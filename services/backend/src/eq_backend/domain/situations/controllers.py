"""/api/v1/situations"""
# Path ids are declared `:str` and typed `int`: a non-integer id is a 422, not a 404.

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Controller, MediaType, Request, Response, delete, get, post, put
from litestar._parsers import parse_cookie_string
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery, JSONBody
from litestar.types import HTTPScope

from eq_backend.context import AppContext
from eq_backend.deps import (
    provide_caller_id,
    provide_viewer_id,
    remembered_viewer,
    token_from,
    user_for_token,
)
from eq_backend.domain.comments.schemas import CommentIn, CommentOut
from eq_backend.domain.situations.schemas import (
    ContributedItem,
    ContributedOut,
    ContributeIn,
    Feed,
    FeedItem,
    ReactionDeleteIn,
    ReactionIn,
    ReactionOut,
    SituationIn,
    SituationOut,
    SituationUpdate,
)
from eq_backend.domain.situations.services import SituationService
from eq_backend.edge import EdgeAnswer, EdgeRead
from eq_backend.envelope import Envelope, ok
from eq_backend.errors import Unprocessable
from eq_backend.services import services
from eq_backend.types import PathId
from eq_backend.write_limits import limit_writes

_AUTH = {"caller_id": Provide(provide_caller_id)}
_OPT = {"viewer_id": Provide(provide_viewer_id)}


class SituationController(Controller):
    path = "/api/v1/situations"
    tags = ["situations"]  # noqa: RUF012

    @get("/contributed", dependencies=_AUTH)
    async def contributed(
        self, request: Request[Any, Any, Any], caller_id: NamedDependency[int]
    ) -> Envelope[list[ContributedItem]]:
        return ok(
            "Contributed situations retrieved successfully",
            await services(request).situations.contributed(caller_id),
        )

    @get(
        "/feed",
        dependencies=_OPT,
        responses={200: ResponseSpec(Envelope[Feed], description="A page of the feed")},
    )
    async def feed(
        self,
        request: Request[Any, Any, Any],
        viewer_id: NamedDependency[int | None],
        page: FromQuery[int] = 1,
        limit: FromQuery[int] = 10,
        sort_by: FromQuery[str] = "created_at",
        sort_order: FromQuery[str] = "desc",
    ) -> Response[bytes]:
        """Public feed; `sort_by` only knows `created_at` (ties broken by id). Requests
        without an Origin header are answered by `feed_at_edge` with the same bytes."""
        body = await services(request).situations.feed_body(viewer_id, page, limit, sort_order)
        return Response(body, media_type=MediaType.JSON)

    @get("/user/me", dependencies=_AUTH)
    async def mine(
        self, request: Request[Any, Any, Any], caller_id: NamedDependency[int]
    ) -> Envelope[list[SituationOut]]:
        return ok(
            "User situations retrieved successfully",
            await services(request).situations.mine(caller_id),
        )

    @get("/user/{user_id:str}", dependencies=_OPT)
    async def by_user(
        self,
        request: Request[Any, Any, Any],
        viewer_id: NamedDependency[int | None],
        user_id: PathId,
    ) -> Envelope[list[FeedItem]]:
        return ok(
            "User situations retrieved successfully",
            await services(request).situations.by_author(user_id, viewer_id),
        )

    @get("/{situation_id:str}")
    async def get_situation(
        self, request: Request[Any, Any, Any], situation_id: PathId
    ) -> Envelope[SituationOut]:
        return ok(
            "Situation retrieved successfully", await services(request).situations.get(situation_id)
        )

    @post("/", status_code=200, dependencies=_AUTH, guards=[limit_writes("situations")])
    async def create(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        data: JSONBody[SituationIn],
    ) -> Envelope[SituationOut]:
        return ok(
            "Situation created successfully",
            await services(request).situations.create(caller_id, data),
        )

    @post("/contribute", status_code=200, dependencies=_AUTH, guards=[limit_writes("situations")])
    async def contribute(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        data: JSONBody[ContributeIn],
    ) -> Envelope[ContributedOut]:
        return ok(
            "Situation contributed successfully",
            await services(request).situations.contribute(caller_id, data),
        )

    @put("/{situation_id:str}", dependencies=_AUTH)
    async def update(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        situation_id: PathId,
        data: JSONBody[SituationUpdate],
    ) -> Envelope[SituationOut]:
        updated = await services(request).situations.update(caller_id, situation_id, data)
        return ok("Situation updated successfully", updated)

    @delete("/{situation_id:str}", status_code=200, dependencies=_AUTH)
    async def delete_situation(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        situation_id: PathId,
    ) -> Envelope[None]:
        await services(request).situations.delete(caller_id, situation_id)
        return ok("Situation deleted successfully", None)

    @get("/{situation_id:str}/comments")
    async def comments(
        self, request: Request[Any, Any, Any], situation_id: PathId
    ) -> Envelope[list[CommentOut]]:
        return ok(
            "Comments retrieved successfully",
            await services(request).comments.for_situation(situation_id),
        )

    @post(
        "/{situation_id:str}/comments",
        status_code=200,
        dependencies=_AUTH,
        guards=[limit_writes("comments")],
    )
    async def add_comment(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        situation_id: PathId,
        data: JSONBody[CommentIn],
    ) -> Envelope[CommentOut]:
        created = await services(request).comments.create(caller_id, situation_id, data.content)
        return ok("Comment created successfully", created)

    @get("/{situation_id:str}/reactions")
    async def reactions(
        self, request: Request[Any, Any, Any], situation_id: PathId
    ) -> Envelope[list[ReactionOut]]:
        return ok(
            "Reactions retrieved successfully",
            await services(request).situations.reactions(situation_id),
        )

    @post(
        "/{situation_id:str}/reactions",
        status_code=200,
        dependencies=_AUTH,
        guards=[limit_writes("reactions")],
    )
    async def react(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        situation_id: PathId,
        data: JSONBody[ReactionIn],
    ) -> Envelope[ReactionOut]:
        reaction = await services(request).situations.react(
            caller_id, situation_id, data.reaction_type
        )
        return ok("Reaction created successfully", reaction)

    @delete("/{situation_id:str}/reactions", status_code=200, dependencies=_AUTH)
    async def unreact(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        situation_id: PathId,
    ) -> Envelope[None]:
        """Removes the caller's reaction; an optional JSON body `{reaction_type}` restricts
        it to that type."""
        body = await request.body()
        reaction_type = None
        if body.strip():
            try:
                reaction_type = msgspec.json.decode(body, type=ReactionDeleteIn).reaction_type
            except msgspec.ValidationError as exc:
                raise Unprocessable("Validation error", errors=[str(exc)]) from None
            except msgspec.DecodeError:
                raise Unprocessable("Validation error", errors=["body is not valid JSON"]) from None
        await services(request).situations.unreact(caller_id, situation_id, reaction_type)
        return ok("Reaction deleted successfully", None)


_SMALL_INT = re.compile(r"-?[0-9]{1,9}")
_FEED_QUERY_DEFAULTS = {"page": "1", "limit": "10", "sort_by": "created_at", "sort_order": "desc"}


def _feed_query(query_string: bytes) -> tuple[int, int, str] | None:
    """page, limit and sort_order as the routed handler reads them; None for anything it
    would answer otherwise (a repeated key, a page that is not a plain integer: a 400)."""
    values = dict(_FEED_QUERY_DEFAULTS)
    seen: set[str] = set()
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key in values:
            if key in seen:
                return None
            seen.add(key)
            values[key] = value
    if not (_SMALL_INT.fullmatch(values["page"]) and _SMALL_INT.fullmatch(values["limit"])):
        return None
    return int(values["page"]), int(values["limit"]), values["sort_order"]


def _header(scope: HTTPScope, name: bytes) -> str | bool | None:
    """The header's value, None when absent, False when sent more than once."""
    found: str | None = None
    for key, value in scope["headers"]:
        if key == name:
            if found is not None:
                return False
            found = value.decode("latin-1")
    return found


def feed_at_edge(ctx: AppContext, situation_service: SituationService) -> EdgeRead:
    """GET /api/v1/situations/feed answered before routing (eq_backend.edge): at once when
    the viewer and every piece of the page are in memory, else after awaiting them."""

    def answer(scope: HTTPScope) -> EdgeAnswer:
        query = _feed_query(scope["query_string"])
        cookie, authorization = _header(scope, b"cookie"), _header(scope, b"authorization")
        if query is None or cookie is False or authorization is False:
            return None
        # Litestar's own parser (what Request.cookies uses): the same token either way.
        cookie_token = parse_cookie_string(cookie).get("access_token") if cookie else None
        token = token_from(cookie_token, authorization or None)  # type: ignore[arg-type]
        known, viewer_id = remembered_viewer(ctx, token)
        if known:
            body = situation_service.cached_body(viewer_id, *query)
            if body is not None:
                return body
        return read(token, query)

    async def read(token: str | None, query: tuple[int, int, str]) -> bytes:
        viewer_id = await user_for_token(ctx, token, required=False)
        return await situation_service.feed_body(viewer_id, *query)

    return answer
