"""Structured logs and Prometheus metrics.

Logs are JSON lines outside dev (plain text in dev). Request lines carry method, path,
status and duration only: never headers, cookies, tokens or query strings.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import time
from typing import Any, TextIO

import msgspec
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from eq_backend.db.tables import COUNTED_TABLES

access_logger = logging.getLogger("eq_backend.access")
# Access lines are queued and written together at most this long after the first.
FLUSH_EVERY_SECONDS = 0.05
_json = msgspec.json.Encoder()
_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured duplicate of msg
}


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def utc_timestamp(seconds: float) -> str:
    """2026-11-27T08:00:00.123Z (milliseconds, UTC). The part up to the second is made
    once a second: every request's access line has one, and strftime was 2.5% of the
    app's CPU in the mixed benchmark."""
    millis = int(seconds * 1000)
    return f"{_utc_second(millis // 1000)}.{millis % 1000:03d}Z"


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, plus any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _json.encode(entry).decode()


class TextFormatter(logging.Formatter):
    """Readable dev lines; request fields appended as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = [
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _RESERVED and not k.startswith("_")
        ]
        return f"{base} {' '.join(extras)}" if extras else base


def configure_logging(level: str, json_lines: bool) -> None:
    """Route every logger (ours, uvicorn's, alembic's) through one stderr handler."""
    # The logging docs' "Optimization" advice: our formats use no caller, thread or
    # process fields, and computing them cost more than the rest of a /health request.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if level.upper() in logging._nameToLevel else "INFO")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's access log would duplicate ours (and log query strings).
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


class AccessLog:
    """One line per HTTP request: method, path (never the query string), status, duration.

    JSON lines skip the logging module (LogRecord, handler lock, formatter: ~30 us a line
    here, more than the rest of a /health request): the same line JSONFormatter would make
    is formatted directly and queued, and the queue goes to stderr, the stream of every
    other log line, in one write at most FLUSH_EVERY_SECONDS after its first line (and on
    shutdown), instead of one system call per request. Plain-text (dev) lines still go
    through `access_logger`. Either way a line is made only while `access_logger` is
    enabled for INFO, so LOG_LEVEL governs it.
    """

    def __init__(self, json_lines: bool) -> None:
        self.json_lines = json_lines
        self._queued: list[str] = []

    def write(self, method: str, path: str, status: int, seconds: float) -> None:
        if not access_logger.isEnabledFor(logging.INFO):
            return
        duration_ms = round(seconds * 1000, 2)
        if not self.json_lines:
            fields = {"method": method, "path": path, "status": status, "duration_ms": duration_ms}
            access_logger.info("request", extra=fields)
            return
        # Field for field what JSONFormatter makes of access_logger.info("request", extra=...)
        # (tests/backend compare the two); method and path are client input: JSON-encoded.
        self._queued.append(
            f'{{"ts":"{utc_timestamp(time.time())}","level":"INFO","logger":"{access_logger.name}",'
            f'"msg":"request","method":{_json.encode(method).decode()},'
            f'"path":{_json.encode(path).decode()},"status":{status},"duration_ms":{duration_ms}}}'
        )
        if len(self._queued) == 1:
            try:
                asyncio.get_running_loop().call_later(FLUSH_EVERY_SECONDS, self.flush)
            except RuntimeError:  # no event loop: nothing would flush later
                self.flush()

    def flush(self) -> None:
        if not self._queued:
            return
        text = "\n".join(self._queued) + "\n"
        self._queued.clear()
        # Looked up per write, so whoever replaces sys.stderr (pytest's capture) gets it.
        stream: TextIO = sys.stderr
        stream.write(text)


class Metrics:
    """One registry per app: request counts and latency per route, and the gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route template and status.",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "path"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.active_users = Gauge(
            "active_users",
            "Users seen in the last 120 s (Redis active_user:* keys).",
            registry=self.registry,
        )
        self.table_rows = Gauge(
            "table_rows", "Row count per table.", ["table"], registry=self.registry
        )
        for table in COUNTED_TABLES:
            self.table_rows.labels(table=table).set(0)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        key = (method, path, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method=method, path=path, status=str(status)),
                self.latency.labels(method=method, path=path),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
