"""The app's one HTTP client for calls out (Google's token and userinfo endpoints, the LLM)."""

from __future__ import annotations

import httpx


class OutboundHttp:
    """Made on first use: building the client's TLS context (loading the CA bundle) took
    ~0.1 s here, a twentieth of a container's start, and most processes of a rolling
    update never call out before they are ready."""

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = httpx.Timeout(timeout_seconds)
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
