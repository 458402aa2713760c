"""The access line written directly is the line the logging path would have made."""

from __future__ import annotations

import json
import logging

import pytest
from eq_backend.observability import AccessLog, JSONFormatter, access_logger


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
