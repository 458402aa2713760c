"""Which deadline a route gets, and how a request is held to it (eq_backend.deadline)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

import pytest
from eq_backend.app import create_app
from eq_backend.deadline import DEADLINE_ADDS, before_deadline, deadline_for
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


# --- before_deadline: the work runs in the caller's task, the late answer goes out at once


class Answers:
    """The time_out callback: records when it was called and when its answer went out."""

    def __init__(self, give: bool = True) -> None:
        self.give = give
        self.called_at: float | None = None
        self.sent_at: float | None = None

    def __call__(self) -> Awaitable[None] | None:
        self.called_at = time.monotonic()
        return self._send() if self.give else None

    async def _send(self) -> None:
        self.sent_at = time.monotonic()


async def test_work_that_ends_in_time_runs_in_the_callers_task() -> None:
    caller = asyncio.current_task()

    async def work() -> asyncio.Task[Any] | None:
        return asyncio.current_task()

    answers = Answers()
    assert await before_deadline(work(), 1.0, answers) == (True, caller)
    assert answers.called_at is None


async def test_at_the_deadline_the_answer_goes_out_before_the_work_has_unwound() -> None:
    unwound_at: list[float] = []

    async def slow_to_cancel() -> str:
        try:
            await asyncio.sleep(10)
        finally:  # like psycopg cancelling a query on a frozen database
            await asyncio.shield(asyncio.sleep(0.3))
            unwound_at.append(time.monotonic())
        return "never"

    answers = Answers()
    started = time.monotonic()
    assert await before_deadline(slow_to_cancel(), 0.1, answers) == (False, None)
    assert answers.called_at is not None
    assert answers.sent_at is not None
    assert unwound_at
    assert answers.called_at - started >= 0.1  # not before the deadline
    assert answers.sent_at < unwound_at[0]  # the client did not wait for the unwinding
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # the deadline's cancel was taken back


async def test_no_late_answer_lets_the_work_finish() -> None:
    async def work() -> str:
        await asyncio.sleep(0.2)
        return "done"

    answers = Answers(give=False)  # e.g. the response had already started
    assert await before_deadline(work(), 0.05, answers) == (True, "done")
    assert answers.called_at is not None


async def test_someone_elses_cancellation_still_cancels() -> None:
    async def request() -> tuple[bool, Any]:
        return await before_deadline(asyncio.sleep(10), 5.0, Answers())

    task = asyncio.create_task(request())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
