"""The ASGI app factory: `eq_backend.app:create_app` (uvicorn `--factory`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.response import Redirect

from eq_backend.context import AppContext
from eq_backend.db.engine import Database, create_engine
from eq_backend.deadline import DeadlineMiddleware
from eq_backend.domain.analysis.controllers import AnalysisController
from eq_backend.domain.analysis.services import AnalysisService
from eq_backend.domain.auth.controllers import AuthController
from eq_backend.domain.comments.controllers import CommentController
from eq_backend.domain.comments.services import CommentService
from eq_backend.domain.situations.controllers import SituationController, feed_at_edge
from eq_backend.domain.situations.services import SituationService
from eq_backend.domain.system.controllers import HealthController, health_envelope, metrics
from eq_backend.domain.topics.controllers import TopicController
from eq_backend.domain.topics.services import TopicService
from eq_backend.domain.users.controllers import UserController
from eq_backend.domain.users.services import UserService
from eq_backend.edge import Edge, FixedAnswer
from eq_backend.errors import handle_http_exception, handle_unexpected
from eq_backend.gauges import run_gauge_refresher
from eq_backend.heap import freeze_startup_heap, thaw_heap
from eq_backend.metrics_listener import MetricsListener
from eq_backend.observability import AccessLog, Metrics, configure_logging
from eq_backend.outbound import OutboundHttp
from eq_backend.readcache import ReadCaches, listen_for_changes
from eq_backend.redis_state import RedisState
from eq_backend.services import Services
from eq_backend.settings import Settings, load_settings

logger = logging.getLogger("eq_backend")


@get("/openapi.json", include_in_schema=False, sync_to_thread=False)
def openapi_json(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    return Response(request.app.openapi_schema.to_schema(), media_type=MediaType.JSON)


@get("/docs", include_in_schema=False, sync_to_thread=False)
def docs() -> Redirect:
    return Redirect("/schema/swagger", status_code=302)


def create_app(settings: Settings | None = None) -> Edge:
    """Build the app. With no settings, they are loaded from the environment and `.env`."""
    if settings is None:
        settings = load_settings()
    configure_logging(settings.log_level, json_lines=not settings.is_dev)
    db = Database(create_engine(settings), fast_pool_size=settings.db_pool_size, settings=settings)
    ctx = AppContext(
        settings=settings,
        db=db,
        redis=RedisState(settings.redis_url),
        metrics=Metrics(),
        access_log=AccessLog(json_lines=not settings.is_dev),
        read_caches=ReadCaches(),
        http=OutboundHttp(settings.openai_timeout_seconds),
    )

    situation_service = SituationService(db, ctx.read_caches)
    services = Services(
        topics=TopicService(db, ctx.read_caches),
        users=UserService(db),
        situations=situation_service,
        comments=CommentService(db, situation_service.pages),
        analysis=AnalysisService(db, ctx.redis, ctx.http, settings),
    )
    stop = asyncio.Event()
    listener: list[asyncio.Task[None]] = []
    metrics_port = settings.metrics_listen_port
    metrics_listener = MetricsListener(ctx.metrics.registry, metrics_port) if metrics_port else None

    async def on_startup(app: Litestar) -> None:
        stop.clear()
        await db.open()
        if metrics_listener is not None:
            metrics_listener.start()
        ctx.background.append(asyncio.create_task(run_gauge_refresher(ctx, stop)))
        if db.fast is not None and settings.read_cache:
            changes = listen_for_changes(db.fast.conninfo, ctx.read_caches)
            listener.append(asyncio.create_task(changes))
        freeze_startup_heap()
        logger.info(
            "eq-backend started",
            extra={"environment": settings.environment, "database": db.dialect},
        )

    async def on_shutdown(app: Litestar) -> None:
        stop.set()
        for task in listener:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        listener.clear()
        if ctx.background:
            # Let a refresh in flight finish; never wait long on a hung database.
            _, pending = await asyncio.wait(ctx.background, timeout=3)
            for task in pending:
                task.cancel()
            ctx.background.clear()
        ctx.access_log.flush()
        if metrics_listener is not None:
            metrics_listener.stop()
        await ctx.http.aclose()
        await ctx.redis.close()
        await db.dispose()
        thaw_heap()

    app = Litestar(
        route_handlers=[
            HealthController,
            AuthController,
            UserController,
            TopicController,
            SituationController,
            CommentController,
            AnalysisController,
            # Off the public port where settings say so (docs/security.md).
            *([metrics] if settings.metrics_listen_port == 0 else []),
            *([openapi_json, docs] if settings.docs_enabled else []),
        ],
        middleware=[DefineMiddleware(DeadlineMiddleware, settings=settings)],
        exception_handlers={HTTPException: handle_http_exception, Exception: handle_unexpected},
        cors_config=CORSConfig(
            allow_origins=settings.allowed_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        ),
        openapi_config=OpenAPIConfig(title="EQ backend", version="1.0.0", path="/schema")
        if settings.docs_enabled
        else None,
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        # Routes take their services from here (eq_backend.services says why not DI).
        state=State({"ctx": ctx, "services": services}),
        logging_config=None,
        debug=False,
    )
    return Edge(
        app,
        ctx,
        reads={
            "/health": FixedAnswer(health_envelope(settings)),
            "/api/v1/situations/feed": feed_at_edge(ctx, situation_service),
        },
    )
