"""The access line written directly is the line the logging path would have made."""

from __future__ import annotations

import json
import logging

import pytest
from eq_backend.observability import AccessLog, JSONFormatter, access_logger, utc_timestamp


@pytest.mark.parametrize("path", ["/health", '/a"b\\c', "/tình-yêu/\u2028x"])
def test_direct_line_equals_the_formatter_line(path: str, capsys) -> None:
    previous = access_logger.level
    access_logger.setLevel(logging.INFO)
    try:
        log = AccessLog(json_lines=True)
        capsys.readouterr()
        log.write("GET", path, 404, 0.012345)  # no event loop here: written at once
        direct = json.loads(capsys.readouterr().err)
    finally:
        access_logger.setLevel(previous)
    record = access_logger.makeRecord(
        access_logger.name, logging.INFO, __file__, 0, "request", (), None,
        extra={"method": "GET", "path": path, "status": 404, "duration_ms": 12.35},
    )  # fmt: skip
    expected = json.loads(JSONFormatter().format(record))
    assert direct.pop("ts").endswith("Z")
    expected.pop("ts")
    assert list(direct) == list(expected)
    assert direct == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (59.999, "1970-01-01T00:00:59.999Z"),
        (60.0, "1970-01-01T00:01:00.000Z"),
        (1796000000.25, "2026-11-30T00:53:20.250Z"),
    ],
)
def test_timestamps_are_utc_with_milliseconds(seconds: float, expected: str) -> None:
    assert utc_timestamp(seconds) == expected
