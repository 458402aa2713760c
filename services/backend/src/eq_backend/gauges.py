"""The background task that refreshes the `active_users` and table-count gauges."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import func, select

from eq_backend.context import AppContext
from eq_backend.db import tables

logger = logging.getLogger("eq_backend.gauges")

_COUNTS = select(
    *(
        select(func.count()).select_from(getattr(tables, name)).scalar_subquery().label(name)
        for name in tables.COUNTED_TABLES
    )
)


async def refresh_gauges(ctx: AppContext) -> None:
    """Count active users (Redis SCAN) and table rows once; never raises."""
    active = await ctx.redis.count_active()
    if active is not None:
        ctx.metrics.active_users.set(active)
    try:
        async with asyncio.timeout(10):
            async with ctx.db.connect() as conn:
                row = (await conn.execute(_COUNTS)).one()
    except Exception as exc:  # the database may be down; the gauges just stay stale
        logger.warning("table counts unavailable: %s", type(exc).__name__)
        return
    for name, value in zip(tables.COUNTED_TABLES, row, strict=True):
        ctx.metrics.table_rows.labels(table=name).set(value or 0)


async def run_gauge_refresher(ctx: AppContext, stop: asyncio.Event) -> None:
    """Refresh the gauges every METRICS_REFRESH_SECONDS until `stop` is set.

    Stopping through the event (not cancellation) never interrupts a database call:
    cancelling one in the middle can leave the pool waiting for a long time.
    """
    while not stop.is_set():
        await refresh_gauges(ctx)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ctx.settings.metrics_refresh_seconds)
