"""The one progress reporter: a line per step with its duration, live status lines while a
step waits (overwritten in a terminal, printed only when they change otherwise, so CI logs
stay readable), and a final summary."""

from __future__ import annotations

import re
import sys
import time
from typing import TextIO

_ELAPSED = re.compile(r"\(\d+s\)")


class Reporter:
    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self._status = ""
        self._last_plain = ""
        self._last_plain_at = 0.0

    def line(self, text: str) -> None:
        self._clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def status(self, text: str) -> None:
        """A transient "what is being waited on" line."""
        if self.tty:
            self._clear()
            self.stream.write(text[:200])
            self.stream.flush()
            self._status = text
            return
        # Plain output: print a status when it changes, and at most every 10 s otherwise.
        # A running "(12s)" counter does not count as a change.
        now = time.monotonic()
        key = _ELAPSED.sub("", text)
        if key != self._last_plain or now - self._last_plain_at > 10:
            self.stream.write(f"  {text}\n")
            self.stream.flush()
            self._last_plain, self._last_plain_at = key, now

    def step(
        self,
        index: int,
        total: int,
        name: str,
        seconds: float,
        note: str = "",
        *,
        ok: bool = True,
        waited: float = 0.0,
        mark: str = "FAILED",
    ) -> None:
        mark = "ok" if ok else mark
        text = f"[{index}/{total}] {name:<10} {mark} {seconds:6.2f}s"
        if waited:
            text += f" (waited {waited:.2f}s)"
        if note:
            text += f"  {note}"
        self.line(text)

    def detail(self, text: str, indent: str = "    ") -> None:
        for raw in text.rstrip().splitlines():
            self.line(indent + raw)

    def _clear(self) -> None:
        if self.tty and self._status:
            self.stream.write("\r\033[K")
            self._status = ""
