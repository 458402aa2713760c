"""Run a long-lived child (a server) in the foreground, passing SIGTERM and SIGINT on.

invoke's own runner does not forward signals: on SIGTERM it died and left the server it
had started running, re-parented, still bound to its port, its output going nowhere.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from types import FrameType

FORWARDED = (signal.SIGTERM, signal.SIGINT)


def run_forwarding_signals(argv: Sequence[str]) -> int:
    """Run `argv`, forward SIGTERM/SIGINT to it, wait for it and return its exit code
    (128 + the signal's number when a signal ended it, as a shell reports it).

    The child gets a process group of its own, so a Ctrl-C in a terminal reaches it once,
    through us, instead of twice (uvicorn treats a second SIGINT as "stop now").
    """
    child = subprocess.Popen(list(argv), process_group=0)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code
