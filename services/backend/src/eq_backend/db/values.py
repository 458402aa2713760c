"""Normalizing values read back from either database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def as_utc(value: datetime | str | None) -> datetime:
    """Timestamps as aware UTC datetimes (SQLite hands back naive UTC or text)."""
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def feed_time(value: datetime | str | None) -> str:
    """The feed's `YYYY-MM-DD HH:MM:SS` (UTC)."""
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S")


def json_object(value: Any) -> Any:
    """A JSON column's value; old rows stored JSON text inside JSON, decode those too."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
