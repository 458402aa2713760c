"""Which deadline a route gets (eq_backend.deadline.deadline_for)."""

from __future__ import annotations

from eq_backend.app import create_app
from eq_backend.deadline import DEADLINE_ADDS, deadline_for
from eq_backend.settings import Settings


def test_routes_that_call_out_get_their_outbound_deadline_on_top() -> None:
    settings = Settings(request_timeout_seconds=10, openai_timeout_seconds=30)
    assert deadline_for(settings, {}) == 10
    assert deadline_for(settings, {DEADLINE_ADDS: "openai_timeout_seconds"}) == 40
    assert deadline_for(settings, {DEADLINE_ADDS: "google_timeout_seconds"}) == 18
    assert deadline_for(Settings(request_timeout_seconds=0), {DEADLINE_ADDS: "x"}) == 0


def test_the_analysis_and_google_callback_routes_name_their_outbound_deadline(
    settings: Settings,
) -> None:
    app = create_app(settings)
    adds = {
        route.path: handler.opt.get(DEADLINE_ADDS)
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if handler.opt.get(DEADLINE_ADDS)
    }
    assert adds == {
        "/api/v1/analysis/analyze": "openai_timeout_seconds",
        "/api/v1/auth/callback/google": "google_timeout_seconds",
    }
