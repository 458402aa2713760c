"""The app's domain services, built once in `create_app` and reached in one way by every
route: `services(request)`.

Not through Litestar's dependency injection: a handler with two dependencies (a service
and `caller_id`) has Litestar resolve them in an anyio task group, a task each, on every
request. For the feed's writes that was a fifth of their CPU in the app (1,071 -> 862 us a
write, writes only, A/B) to look up a singleton. Dependencies stay for what depends on
the request: who calls (`caller_id`, `viewer_id`, `admin_id`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litestar import Request

    from eq_backend.domain.analysis.services import AnalysisService
    from eq_backend.domain.comments.services import CommentService
    from eq_backend.domain.situations.services import SituationService
    from eq_backend.domain.topics.services import TopicService
    from eq_backend.domain.users.services import UserService


@dataclass(frozen=True, slots=True)
class Services:
    """Stored as `app.state.services`."""

    topics: TopicService
    users: UserService
    situations: SituationService
    comments: CommentService
    analysis: AnalysisService


def services(request: Request[Any, Any, Any]) -> Services:
    found: Services = request.app.state.services
    return found
