"""The ASGI app factory: `eq_backend.app:create_app` (uvicorn `--factory`)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

import httpx
from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.response import Redirect
from litestar.types import (
    HTTPScope,
    LifeSpanReceive,
    LifeSpanScope,
    LifeSpanSend,
    Receive,
    Scope,
    Send,
)

from eq_backend.context import AppContext
from eq_backend.db.engine import Database, create_engine
from eq_backend.domain.analysis.controllers import AnalysisController
from eq_backend.domain.analysis.services import AnalysisService
from eq_backend.domain.auth.controllers import AuthController
from eq_backend.domain.comments.controllers import CommentController
from eq_backend.domain.comments.services import CommentService
from eq_backend.domain.situations.controllers import SituationController
from eq_backend.domain.situations.services import SituationService
from eq_backend.domain.system.controllers import HealthController, metrics
from eq_backend.domain.topics.controllers import TopicController
from eq_backend.domain.topics.services import TopicService
from eq_backend.domain.users.controllers import UserController
from eq_backend.domain.users.services import UserService
from eq_backend.errors import handle_http_exception, handle_unexpected
from eq_backend.gauges import run_gauge_refresher
from eq_backend.observability import Metrics, access_logger, configure_logging
from eq_backend.redis_state import RedisState
from eq_backend.settings import Settings, load_settings

logger = logging.getLogger("eq_backend")


class EQLitestar(Litestar):
    """Litestar plus one observer around every HTTP request, routed or not (404/405 too):
    Prometheus counters and one access-log line, no per-request middleware stack."""

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        if scope["type"] != ScopeType.HTTP:
            await super().__call__(scope, receive, send)
            return
        http_scope = cast("HTTPScope", scope)
        start = time.perf_counter()
        status = 500

        async def observed_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await super().__call__(http_scope, receive, observed_send)
        finally:
            elapsed = time.perf_counter() - start
            method = http_scope["method"]
            template = http_scope.get("path_template") or "unmatched"
            self.state.ctx.metrics.observe(method, template, status, elapsed)
            if access_logger.isEnabledFor(logging.INFO):
                access_logger.info(
                    "request",
                    extra={
                        "method": method,
                        "path": http_scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )


@get("/openapi.json", include_in_schema=False, sync_to_thread=False)
def openapi_json(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    return Response(request.app.openapi_schema.to_schema(), media_type=MediaType.JSON)


@get("/docs", include_in_schema=False, sync_to_thread=False)
def docs() -> Redirect:
    return Redirect("/schema/swagger", status_code=302)


def _singleton(value: Any) -> Provide:
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the app. With no settings, they are loaded from the environment and `.env`."""
    if settings is None:
        settings = load_settings()
    configure_logging(settings.log_level, json_lines=not settings.is_dev)
    db = Database(create_engine(settings), fast_pool_size=settings.db_pool_size)
    ctx = AppContext(
        settings=settings,
        db=db,
        redis=RedisState(settings.redis_url),
        metrics=Metrics(),
        http=httpx.AsyncClient(timeout=httpx.Timeout(settings.openai_timeout_seconds)),
    )

    topic_service = TopicService(db)
    situation_service = SituationService(db)
    stop = asyncio.Event()

    async def on_startup(app: Litestar) -> None:
        stop.clear()
        await db.open()
        ctx.background.append(asyncio.create_task(run_gauge_refresher(ctx, stop)))
        logger.info(
            "eq-backend started",
            extra={"environment": settings.environment, "database": db.dialect},
        )

    async def on_shutdown(app: Litestar) -> None:
        stop.set()
        if ctx.background:
            # Let a refresh in flight finish; never wait long on a hung database.
            _, pending = await asyncio.wait(ctx.background, timeout=3)
            for task in pending:
                task.cancel()
            ctx.background.clear()
        await ctx.http.aclose()
        await ctx.redis.close()
        await db.dispose()

    return EQLitestar(
        route_handlers=[
            HealthController,
            metrics,
            AuthController,
            UserController,
            TopicController,
            SituationController,
            CommentController,
            AnalysisController,
            openapi_json,
            docs,
        ],
        dependencies={
            "topic_service": _singleton(topic_service),
            "user_service": _singleton(UserService(db)),
            "situation_service": _singleton(situation_service),
            "comment_service": _singleton(CommentService(db)),
            "analysis_service": _singleton(AnalysisService(db, ctx.redis, ctx.http, settings)),
        },
        exception_handlers={HTTPException: handle_http_exception, Exception: handle_unexpected},
        cors_config=CORSConfig(
            allow_origins=settings.allowed_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        ),
        openapi_config=OpenAPIConfig(title="EQ backend", version="1.0.0", path="/schema"),
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        # The hot reads (feed, topic list) take their service from here, not through DI.
        state=State(
            {"ctx": ctx, "topic_service": topic_service, "situation_service": situation_service}
        ),
        logging_config=None,
        debug=False,
    )
