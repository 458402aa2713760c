"""Traffic held across a release or a fault, as a feed's users send it, and what it saw.

`held_load` measures the app under `release_mix.lua` for a few seconds first (the p99
*before*), then keeps wrk's keep-alive connections open through the block (the figures
*during*): browsers and load balancers hold connections like these across a rollout, and a
pod that closes one under an unanswered request is a failed request for a user. Every
request is counted by outcome (connect/read/write errors, timeouts, non-2xx answers).

The figures of each run are kept in `FIGURES` and printed at the end of the session by
tests/e2e/conftest.py, so CI's log shows them for passing runs too.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

SCRIPT = Path(__file__).with_name("release_mix.lua")
CONNECTIONS = 16
# Longer than any answer the app should give (its own request deadline is 10 s, the database
# checks 1.5-2 s) and shorter than a user's patience: an answer later than this is a failure.
TIMEOUT = "5s"
BASELINE_SECONDS = 5
MIN_RATE = 1000.0
FIGURES: list[dict[str, Any]] = []


@dataclass(frozen=True)
class Traffic:
    """Where to send it, as whom (bearer tokens of seeded users), on which situations."""

    url: str
    tokens: list[str] = field(repr=False)
    situations: list[int]


@dataclass(frozen=True)
class Phase:
    """One wrk run's summary."""

    requests: int
    seconds: float
    rate: float
    p50_ms: float
    p99_ms: float
    socket_errors: dict[str, int]
    non_2xx: int

    @property
    def failed(self) -> int:
        return sum(self.socket_errors.values()) + self.non_2xx


@dataclass
class LoadRun:
    label: str
    before: Phase | None = None
    during: Phase | None = None
    report: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # the scenario's own figures

    def figures(self) -> dict[str, Any]:
        phases = {"before": self.before, "during": self.during}
        return {
            "scenario": self.label,
            **{name: asdict(phase) for name, phase in phases.items() if phase},
            **self.extra,
        }


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(report: str) -> Phase:
    """wrk's --latency summary as numbers; fails the test on a summary it cannot read."""
    done = re.search(r"(\d+) requests in ([\d.]+\w+),", report)
    p50 = re.search(r"^\s+50%\s+(\S+)", report, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", report, re.M)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", report)
    if not (done and p50 and p99 and rate):
        pytest.fail(f"wrk printed no summary:\n{report}")
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report
    )
    counts = [int(n) for n in errors.groups()] if errors else [0, 0, 0, 0]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    return Phase(
        requests=int(done.group(1)),
        seconds=round(_milliseconds(done.group(2)) / 1e3, 2),
        rate=float(rate.group(1)),
        p50_ms=round(_milliseconds(p50.group(1)), 2),
        p99_ms=round(_milliseconds(p99.group(1)), 2),
        socket_errors=dict(zip(("connect", "read", "write", "timeout"), counts, strict=True)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def _wrk(traffic: Traffic, seconds: int) -> subprocess.Popen[str]:
    wrk = shutil.which("wrk")
    if wrk is None:
        pytest.fail("wrk is not installed (Debian package wrk; .ci/run installs it)")
    env = {
        **os.environ,
        "EQ_LOAD_TOKENS": ",".join(traffic.tokens),
        "EQ_LOAD_SITUATIONS": ",".join(map(str, traffic.situations)),
    }
    argv = [wrk, "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", TIMEOUT, "--latency"]
    return subprocess.Popen(
        [*argv, "-s", str(SCRIPT), traffic.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


@contextlib.contextmanager
def held_load(traffic: Traffic, label: str, *, failures_allowed: bool = False) -> Iterator[LoadRun]:
    """Baseline, then load held through the block. Both phases must have run at ≥ MIN_RATE
    requests/s with every request answered 2xx in time; with `failures_allowed` (a fault
    scenario judges its own window of failures) that holds for the baseline only."""
    run = LoadRun(label)
    baseline, _ = _wrk(traffic, BASELINE_SECONDS).communicate(timeout=BASELINE_SECONDS + 30)
    run.before = parse_wrk(baseline)
    load = _wrk(traffic, 900)
    try:
        time.sleep(2)  # connections opened and warm before the block starts
        yield run
        time.sleep(1)
    finally:
        load.send_signal(signal.SIGINT)  # wrk stops and prints its summary
        run.report, _ = load.communicate(timeout=30)
    run.during = parse_wrk(run.report)
    FIGURES.append(run.figures())
    print(f"==== {label}: before {run.before}\n{run.report}")
    assert run.before.failed == 0, f"failures before {label}:\n{baseline}"
    assert run.before.rate >= MIN_RATE, f"only {run.before.rate} requests/s before {label}"
    if not failures_allowed:  # a fault scenario judges its own failures (and their pace)
        failed = run.during.failed
        assert failed == 0, f"{failed} failed requests in {label}:\n{run.report}"
        assert run.during.rate >= MIN_RATE, f"only {run.during.rate} requests/s in {label}"


# --- probes for the fault scenarios ----------------------------------------------------------


def http_status(url: str) -> int:
    """The HTTP status of a GET (0 when no answer came within 3 s)."""
    try:
        return httpx.get(url, timeout=3).status_code
    except httpx.HTTPError:
        return 0


def is_503_envelope(url: str) -> bool:
    """A 503 in the API's envelope (`{"success": false, "message": ...}`), not a bare error."""
    try:
        answer = httpx.get(url, timeout=3)
        body = answer.json()
    except (httpx.HTTPError, ValueError):
        return False
    return answer.status_code == 503 and body.get("success") is False and bool(body.get("message"))


def seconds_until(check: Callable[[], bool], since: float, timeout: float = 30) -> float:
    """Seconds from `since` (a time.monotonic()) until `check()` first holds, polling every
    0.1 s; fails the test after `timeout`."""
    deadline = since + timeout
    while time.monotonic() < deadline:
        if check():
            return round(time.monotonic() - since, 2)
        time.sleep(0.1)
    pytest.fail(f"not seen within {timeout} s: {check}")


class Ledger:
    """Comments written one after another in a thread, each remembered by its unique text if
    the API acknowledged it (2xx): afterwards every acknowledged one must be in the database."""

    def __init__(self, traffic: Traffic) -> None:
        self.mark = f"ledger-{uuid.uuid4().hex[:8]}"
        self.acknowledged: list[str] = []
        self.refused = 0
        self._url = f"{traffic.url}/api/v1/situations/{traffic.situations[0]}/comments"
        self._headers = {"Authorization": f"Bearer {traffic.tokens[0]}"}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _write(self) -> None:
        with httpx.Client(headers=self._headers, timeout=3) as client:
            for n in itertools.count():
                if self._stop.is_set():
                    return
                content = f"{self.mark}-{n}"
                try:
                    answer = client.post(self._url, json={"content": content})
                    acknowledged = answer.is_success
                except httpx.HTTPError:
                    acknowledged = False
                if acknowledged:
                    self.acknowledged.append(content)
                else:
                    self.refused += 1
                time.sleep(0.02)
