"""One outbound HTTP call with a total deadline and a cap on the reply's size.

httpx's timeouts apply to each read: a server that trickles a byte every few seconds never
trips them, and one that floods would fill memory. Every call out of the app (the LLM,
Google) goes through `bounded_request`, which bounds both the time to the last byte and
the bytes read.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


class OutboundFailure(Exception):
    """The call out failed; the message is one line naming why (no URL, no secret)."""


class BoundedReply:
    __slots__ = ("body", "status_code")

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body


async def bounded_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    deadline_seconds: float,
    max_bytes: int,
    **kwargs: Any,
) -> BoundedReply:
    """The status and whole body within `deadline_seconds`, or OutboundFailure."""
    try:
        async with asyncio.timeout(deadline_seconds):
            return await _read_capped(client, method, url, max_bytes, kwargs)
    except TimeoutError:
        raise OutboundFailure(f"no complete answer within {deadline_seconds:.3g} s") from None
    except httpx.HTTPError as exc:
        raise OutboundFailure(f"{type(exc).__name__} before a complete answer") from None


async def _read_capped(
    client: httpx.AsyncClient, method: str, url: str, max_bytes: int, kwargs: dict[str, Any]
) -> BoundedReply:
    async with client.stream(method, url, **kwargs) as response:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise OutboundFailure(f"answer of {declared} bytes is over {max_bytes}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise OutboundFailure(f"answer is over {max_bytes} bytes")
            chunks.append(chunk)
        return BoundedReply(response.status_code, b"".join(chunks))
