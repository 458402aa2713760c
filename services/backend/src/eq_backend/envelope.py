"""The one response envelope: `{"success", "message", "data"}` and its error form."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


class Envelope(msgspec.Struct, Generic[T]):
    """Every success: HTTP 200 with a fixed message and the payload."""

    success: bool
    message: str
    data: T


class ErrorEnvelope(msgspec.Struct):
    """Every error (401/403/404/409/422/429/5xx)."""

    success: bool
    message: str
    errors: list[str]
    details: dict[str, Any] | None = None


def ok(message: str, data: T) -> Envelope[T]:
    """Wrap a payload in the success envelope."""
    return Envelope(success=True, message=message, data=data)
