"""Who may do what beyond "logged in": administrators, named by ADMIN_EMAILS."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency, Provide
from sqlalchemy import bindparam, select

from eq_backend.db.tables import users
from eq_backend.deps import app_context, provide_caller_id
from eq_backend.errors import Forbidden

_EMAIL_BY_ID = select(users.c.email).where(users.c.id == bindparam("id"))


async def provide_admin_id(request: Request[Any, Any, Any], caller_id: NamedDependency[int]) -> int:
    """The caller's user id when the caller is an administrator; 403 for anyone else
    (401 first when there is no valid token, through `caller_id`)."""
    ctx = app_context(request)
    rows = await ctx.db.fetch_all(_EMAIL_BY_ID, {"id": caller_id})
    if not rows or not ctx.settings.is_admin(str(rows[0][0])):
        raise Forbidden("Administrators only", errors=["only administrators may change topics"])
    return caller_id


# Route dependencies of an administrator-only handler: it takes `admin_id: int`.
ADMIN_ONLY = {
    "caller_id": Provide(provide_caller_id),
    "admin_id": Provide(provide_admin_id),
}
