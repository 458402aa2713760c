"""What one running app holds: settings, database, Redis, metrics, logs, caches, HTTP client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from eq_backend.db.engine import Database
from eq_backend.observability import AccessLog, Metrics
from eq_backend.outbound import OutboundHttp
from eq_backend.readcache import ReadCaches
from eq_backend.redis_state import RedisState
from eq_backend.settings import Settings

if TYPE_CHECKING:
    import asyncio


@dataclass
class AppContext:
    """Created once per app in `create_app`; stored as `app.state.ctx`."""

    settings: Settings
    db: Database
    redis: RedisState
    metrics: Metrics
    access_log: AccessLog
    read_caches: ReadCaches
    http: OutboundHttp
    background: list[asyncio.Task[None]] = field(default_factory=list)
    # Set once SIGTERM arrives (eq_backend.server): every response then closes its connection.
    draining: bool = False
    # email -> (user id, monotonic expiry): see eq_backend.deps._user_id
    user_ids: dict[str, tuple[int, float]] = field(default_factory=dict)
