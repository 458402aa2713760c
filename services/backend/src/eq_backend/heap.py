"""Keeping the garbage collector's full collections short in a long-running server.

A full (generation 2) collection walks every container object the process holds, and the
event loop waits for it: every request in flight stalls. After startup that is ~135,000
objects (Litestar's routes and signature models, SQLAlchemy's metadata, the imported
modules) that never become garbage. Under the mixed benchmark a full collection ran every
few seconds and took 100-200 ms each (gc.callbacks in the serving process, 2 cores shared
with PostgreSQL and wrk): a p99 of its own. `gc.freeze()` moves everything alive at the
end of startup to the permanent generation, which collections never walk; what the process
creates afterwards (cached pages, requests) is collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect startup's garbage, then exempt everything still alive from collections."""
    gc.collect()
    gc.freeze()


def thaw_heap() -> None:
    """Hand the frozen objects back to the collector when the app shuts down: a process
    that creates the app again (the tests do, hundreds of times) would otherwise never
    collect the cycles of the apps before it."""
    gc.unfreeze()
