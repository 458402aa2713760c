"""/api/v1/users"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter

from eq_backend.deps import provide_caller_id
from eq_backend.domain.users.schemas import MeOut, ProfileOut, UserBrief
from eq_backend.envelope import Envelope, ok
from eq_backend.errors import Unprocessable
from eq_backend.services import services
from eq_backend.types import PathId

_AUTH = {"caller_id": Provide(provide_caller_id)}


class UserController(Controller):
    path = "/api/v1/users"
    tags = ["users"]  # noqa: RUF012

    @get("/", dependencies=_AUTH)
    async def list_users(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        search: FromQuery[str | None] = None,
        page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
        size: Annotated[int, QueryParameter(ge=1, le=100)] = 10,
    ) -> Envelope[list[UserBrief]]:
        if search is not None and len(search.strip()) < 2:
            raise Unprocessable("Validation error", errors=["search: at least 2 characters"])
        found = await services(request).users.search(
            search.strip() if search else None, (page - 1) * size, size
        )
        return ok("Users retrieved successfully", found)

    @get("/me", dependencies=_AUTH)
    async def me(
        self, request: Request[Any, Any, Any], caller_id: NamedDependency[int]
    ) -> Envelope[MeOut]:
        return ok(
            "Current user retrieved successfully", await services(request).users.me(caller_id)
        )

    @get("/search")
    async def search_users(
        self,
        request: Request[Any, Any, Any],
        # `query` is reserved in Litestar handlers: bind the query key explicitly.
        text: Annotated[str, QueryParameter(name="query", min_length=2)],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 10,
    ) -> Envelope[list[UserBrief]]:
        if len(text.strip()) < 2:
            raise Unprocessable("Validation error", errors=["query: at least 2 characters"])
        found = await services(request).users.search(text.strip(), 0, limit)
        return ok("Users search completed successfully", found)

    @get("/{user_id:str}", dependencies=_AUTH)
    async def profile(
        self,
        request: Request[Any, Any, Any],
        caller_id: NamedDependency[int],
        user_id: PathId,
    ) -> Envelope[ProfileOut]:
        return ok(
            "User profile retrieved successfully",
            await services(request).users.profile(user_id, caller_id),
        )
