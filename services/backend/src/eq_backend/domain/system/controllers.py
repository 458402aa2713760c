"""Health, database health and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get
from sqlalchemy import text

from eq_backend.deps import app_context
from eq_backend.envelope import Envelope, ok
from eq_backend.errors import ServiceUnavailable

DB_CHECK_TIMEOUT_SECONDS = 1.5


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


class HealthController(Controller):
    path = "/health"
    tags = ["health"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/", sync_to_thread=False)
    def health(self, request: Request[Any, Any, Any]) -> Envelope[HealthData]:
        """Liveness: cheap, no database. Tells which build is serving."""
        cached: Envelope[HealthData] | None = getattr(request.app.state, "health_body", None)
        if cached is None:
            s = app_context(request).settings
            cached = ok(
                "Healthy",
                HealthData(
                    status="ok",
                    deployment=Deployment(
                        at=s.deployed_at, sha=s.deploy_sha, image=s.deploy_image, by=s.deploy_by
                    ),
                ),
            )
            request.app.state.health_body = cached
        return cached

    @get("/db")
    async def database(self, request: Request[Any, Any, Any]) -> Envelope[DatabaseStatus]:
        """Readiness of the database: SELECT 1 within ~2 s, else 503."""
        ctx = app_context(request)
        try:
            async with asyncio.timeout(DB_CHECK_TIMEOUT_SECONDS):
                async with ctx.db.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except TimeoutError:
            reason = f"database did not answer within {DB_CHECK_TIMEOUT_SECONDS} s"
            raise ServiceUnavailable(
                "Database unhealthy", errors=[reason], data={"error": reason}
            ) from None
        except Exception as exc:  # any driver error means "not healthy", never a 500
            reason = f"{type(exc).__name__}: database unreachable"
            raise ServiceUnavailable(
                "Database unhealthy", errors=[reason], data={"error": reason}
            ) from None
        return ok("Database healthy", DatabaseStatus(status="connected"))


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
