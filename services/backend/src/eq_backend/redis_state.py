"""Redis features that degrade instead of failing: active users and rate limits.

Every call has a short deadline and catches Redis errors. After a failure Redis is left
alone for a few seconds (so a dead Redis costs requests nothing), then retried: the client
reconnects on its own when Redis is back.

The deadline is `asyncio.timeout` around each call, not redis-py's `socket_timeout`: that
one wraps every send in `asyncio.wait_for`, which on Python 3.11 runs the send as a task
of its own, started on the event loop's next round. Under load a round is every other
connection's request (~7 ms at 32 busy connections), paid by every write for its rate
limit; a cancelled command makes redis-py drop its connection, so none is reused dirty.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger("eq_backend.redis")

ACTIVE_USER_TTL_SECONDS = 120
# A user's key is re-set at most this often by one process: a busy user costs one Redis
# round trip per second instead of one per request; the key then expires between
# TTL - 1 s and TTL after the last request.
MARK_ACTIVE_EVERY_SECONDS = 1.0
_RETRY_AFTER_SECONDS = 5.0
# How long one call (connecting included) may take before Redis counts as unavailable.
CALL_TIMEOUT_SECONDS = 0.5
# The active-user count walks every key in SCAN pages (one round trip per 1,000 keys).
COUNT_TIMEOUT_SECONDS = 2.0
# One hit of a fixed window, atomic and in one command: the count, and the key's expiry
# when the hit opened it (the key names its window, so it is never needed after that).
# A MULTI/INCR/EXPIRE/EXEC pipeline did the same in four commands, and parsing their four
# replies cost each write more Python than the rest of the limiter.
_COUNT_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class RedisState:
    """Wraps an optional Redis client; every method is safe when Redis is down or absent."""

    def __init__(self, url: str) -> None:
        self._client: Redis | None = None
        if url:
            self._client = Redis.from_url(
                url,
                socket_connect_timeout=CALL_TIMEOUT_SECONDS,
                socket_timeout=None,  # each call's asyncio.timeout instead (see above)
                retry_on_timeout=False,
                health_check_interval=30,
            )
        self._down_until = 0.0
        self._marked: dict[int, float] = {}
        self._count_hit = self._client.register_script(_COUNT_HIT) if self._client else None

    @property
    def configured(self) -> bool:
        return self._client is not None

    def _usable(self) -> Redis | None:
        if self._client is None or time.monotonic() < self._down_until:
            return None
        return self._client

    def _failed(self, action: str, exc: Exception) -> None:
        if self._down_until == 0.0 or time.monotonic() >= self._down_until:
            logger.warning("redis unavailable during %s: %s", action, exc)
        self._down_until = time.monotonic() + _RETRY_AFTER_SECONDS

    def _recovered(self) -> None:
        if self._down_until:
            logger.info("redis reachable again")
            self._down_until = 0.0

    def marked_recently(self, user_id: int) -> bool:
        """Whether `mark_active` would skip Redis for this user now."""
        last = self._marked.get(user_id, -MARK_ACTIVE_EVERY_SECONDS)
        return time.monotonic() - last < MARK_ACTIVE_EVERY_SECONDS

    async def mark_active(self, user_id: int) -> None:
        """SETEX active_user:{id} 120 "1" (as SET ... EX 120, the same command in Redis)."""
        if self.marked_recently(user_id):
            return
        now = time.monotonic()
        client = self._usable()
        if client is None:
            return
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                await client.set(f"active_user:{user_id}", "1", ex=ACTIVE_USER_TTL_SECONDS)
        except (RedisError, OSError) as exc:
            self._failed("mark_active", exc)
        else:
            self._recovered()
            if len(self._marked) >= 100_000:
                self._marked.clear()
            self._marked[user_id] = now

    async def count_active(self) -> int | None:
        """How many `active_user:*` keys exist (SCAN), or None when Redis is unavailable."""
        client = self._usable()
        if client is None:
            return None
        try:
            count = 0
            async with asyncio.timeout(COUNT_TIMEOUT_SECONDS):
                async for _key in client.scan_iter(match="active_user:*", count=1000):
                    count += 1
        except (RedisError, OSError) as exc:
            self._failed("count_active", exc)
            return None
        self._recovered()
        return count

    async def hit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, int]:
        """Count one hit in a fixed window: (allowed, seconds until the window ends).

        Fails open: when Redis is unavailable every hit is allowed.
        """
        client = self._usable()
        if client is None or self._count_hit is None or limit <= 0:
            return True, 0
        now = int(time.time())
        window = now // window_seconds
        retry_after = (window + 1) * window_seconds - now
        redis_key = f"ratelimit:{key}:{window}"
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                count = await self._count_hit(keys=[redis_key], args=[window_seconds + 1])
        except (RedisError, OSError) as exc:
            self._failed("rate limit", exc)
            return True, 0
        self._recovered()
        return int(count) <= limit, retry_after

    async def ping(self) -> bool:
        client = self._usable()
        if client is None:
            return False
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                await client.ping()
        except (RedisError, OSError) as exc:
            self._failed("ping", exc)
            return False
        self._recovered()
        return True

    async def close(self) -> None:
        if self._client is not None:
            try:
                await self._client.aclose()
            except (RedisError, OSError) as exc:
                logger.warning("closing redis failed: %s", exc)
