"""uvicorn with a drain before the graceful shutdown.

Kubernetes sends SIGTERM to a pod it replaces while the removal of that pod from the
Service's endpoints is still on its way to every node, and clients (browsers, load
balancers, kube-proxy's established connections) keep sending on keep-alive connections
they already hold. A server that stops at once resets those. So the first SIGTERM (or
SIGINT) starts a drain of SHUTDOWN_DRAIN_SECONDS: the server keeps accepting and answering,
and every response closes its connection (eq_backend.edge), so each client's next request
opens a new connection, to a pod that stays. Then uvicorn's own graceful shutdown runs
(SHUTDOWN_GRACE_SECONDS for what is still in flight). A second signal skips the rest of the
drain; a second SIGINT also skips the graceful wait, as in uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType

import uvicorn

from eq_backend.context import AppContext

logger = logging.getLogger("eq_backend.server")


class DrainingServer(uvicorn.Server):
    """A uvicorn Server whose first exit signal drains before it shuts down."""

    def __init__(self, config: uvicorn.Config, ctx: AppContext) -> None:
        super().__init__(config)
        self.ctx = ctx
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        drain = self.ctx.settings.shutdown_drain_seconds
        if self.ctx.draining or drain <= 0 or self._loop is None or self.should_exit:
            super().handle_exit(sig, frame)
            return
        self._captured_signals.append(sig)
        self.ctx.draining = True
        logger.info(
            "%s: answering for %g s more, closing each connection after its response",
            signal.Signals(sig).name,
            drain,
        )
        # Signal handlers run between bytecodes of the main thread: hand the timer to the loop.
        self._loop.call_soon_threadsafe(self._loop.call_later, drain, self._end_drain)

    def _end_drain(self) -> None:
        self.should_exit = True
