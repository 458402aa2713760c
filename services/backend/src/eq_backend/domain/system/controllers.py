"""Health, database health and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NoReturn

import msgspec
from litestar import Controller, MediaType, Request, Response, get
from sqlalchemy import text

from eq_backend.db.engine import Database
from eq_backend.deps import app_context
from eq_backend.envelope import Envelope, ok
from eq_backend.errors import ServiceUnavailable
from eq_backend.settings import Settings

DB_CHECK_TIMEOUT_SECONDS = 1.5
MAX_PENDING_CHECKS = 3


class Deployment(msgspec.Struct):
    at: str
    sha: str
    image: str
    by: str


class HealthData(msgspec.Struct):
    status: str
    deployment: Deployment


class DatabaseStatus(msgspec.Struct):
    status: str


def health_envelope(settings: Settings) -> Envelope[HealthData]:
    return ok(
        "Healthy",
        HealthData(
            status="ok",
            deployment=Deployment(
                at=settings.deployed_at,
                sha=settings.deploy_sha,
                image=settings.deploy_image,
                by=settings.deploy_by,
            ),
        ),
    )


class HealthController(Controller):
    path = "/health"
    tags = ["health"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/", sync_to_thread=False)
    def health(self, request: Request[Any, Any, Any]) -> Envelope[HealthData]:
        """Liveness: cheap, no database. Tells which build is serving. (Requests without an
        Origin header are answered before routing, from the same envelope: eq_backend.edge.)"""
        return health_envelope(app_context(request).settings)

    @get("/db")
    async def database(self, request: Request[Any, Any, Any]) -> Envelope[DatabaseStatus]:
        """Readiness of the database: SELECT 1 within ~2 s, else 503."""
        ctx = app_context(request)
        pending: set[asyncio.Task[None]] = request.app.state.setdefault("db_checks", set())
        if len(pending) >= MAX_PENDING_CHECKS:
            # Never let a hung database pile up connections through probes.
            _unhealthy("earlier checks are still waiting for the database")
        # The check runs as its own task: when the database hangs we answer at the deadline
        # and let the driver give up in the background (cancelling a query can take long).
        check = asyncio.create_task(_select_one(ctx.db))
        done, _ = await asyncio.wait({check}, timeout=DB_CHECK_TIMEOUT_SECONDS)
        if not done:
            pending.add(check)
            check.add_done_callback(_forget(pending))
            check.cancel()
            _unhealthy(f"database did not answer within {DB_CHECK_TIMEOUT_SECONDS} s")
        error = check.exception()
        if error is not None:
            _unhealthy(f"{type(error).__name__}: database unreachable")
        return ok("Database healthy", DatabaseStatus(status="connected"))


async def _select_one(db: Database) -> None:
    async with db.connect() as conn:
        await conn.execute(text("SELECT 1"))


def _forget(pending: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    def callback(task: asyncio.Task[None]) -> None:
        pending.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as never retrieved

    return callback


def _unhealthy(reason: str) -> NoReturn:
    raise ServiceUnavailable("Database unhealthy", errors=[reason], data={"error": reason})


def _metrics_response(request: Request[Any, Any, Any]) -> Response[bytes]:
    body, _ = app_context(request).metrics.render()
    return Response(content=body, media_type="text/plain; version=0.0.4")


@get(
    ["/metrics", "/api/v1/metrics"],
    sync_to_thread=False,
    media_type=MediaType.TEXT,
    tags=["health"],
)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text format: request counts and latency per route, gauges."""
    return _metrics_response(request)
