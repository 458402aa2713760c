"""Interruption of a deploy or rollback: Ctrl-C, or a cancelled CI job.

GitHub Actions cancels a job with SIGINT, then SIGTERM about 7.5 s later, then SIGKILL. So
the first SIGINT or SIGTERM only *asks* to stop: the API call under way finishes (a write
whose outcome we did not learn would leave the cluster in an unknown state), and the runner
raises `Interrupted` at its next checkpoint (before a step, between a step's apply and its
wait, at every poll of a wait). The flow then records an `interrupted` history entry naming
the step and, when the rollout had started, rolls back within the time left of `BUDGET`. A
second signal exits at once (exit 130): whoever sends it wants the process gone.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from eq_deploy.errors import DeployError

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# GitHub's gap between SIGINT and SIGTERM; everything after the first signal must fit in it.
BUDGET = 7.5
# What recording history and releasing the lock take after a rollback's wait (two API calls
# each), kept out of the time the rollback may wait.
RESERVE = 2.5
EXIT_CODE = 130


class Interrupted(DeployError):
    """The run was asked to stop (SIGINT/SIGTERM) and stopped at a checkpoint."""

    exit_code = EXIT_CODE

    def __init__(self, message: str, *, signal_name: str, step: str) -> None:
        super().__init__(message)
        self.signal_name = signal_name
        self.step = step


@dataclass
class Interruption:
    """Whether a stop was asked for, and when. One per run; the signal handler sets it."""

    signal_name: str = ""
    at: float = 0.0
    raised: bool = False  # the Interrupted exception was raised: cleanup runs unhindered

    @property
    def requested(self) -> bool:
        return bool(self.signal_name)

    def request(self, signal_name: str) -> None:
        if not self.requested:
            self.signal_name, self.at = signal_name, time.monotonic()

    def checkpoint(self, step: str) -> None:
        """Raise Interrupted once, at the first checkpoint after a stop was asked for. The
        cleanup that follows (record, automatic rollback, lock release) passes through."""
        if self.requested and not self.raised:
            self.raised = True
            raise Interrupted(
                f"interrupted by {self.signal_name} during {step}",
                signal_name=self.signal_name,
                step=step,
            )

    def time_left(self) -> float:
        """Seconds the cleanup may still wait before the second signal is due."""
        if not self.requested:
            return float("inf")
        return BUDGET - RESERVE - (time.monotonic() - self.at)


@contextmanager
def stopping_on_signals(interruption: Interruption) -> Iterator[None]:
    """While inside: the first SIGINT/SIGTERM requests a stop, the second exits at once.
    Signal handlers exist only in the main thread; elsewhere (a library caller's worker
    thread) this does nothing and the caller's own handling applies."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if interruption.requested:
            # os.write: no buffered stream may be half-written by the code interrupted here.
            os.write(2, f"error: {name} again: exiting now (the lock goes stale)\n".encode())
            os._exit(EXIT_CODE)
        interruption.request(name)
        os.write(
            2,
            f"{name}: stopping after the current call, then recording and rolling back "
            f"(again to exit at once)\n".encode(),
        )

    previous = {sig: signal.signal(sig, handle) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.stderr.flush()
