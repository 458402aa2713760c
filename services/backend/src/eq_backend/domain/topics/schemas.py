"""Topic payloads."""

from __future__ import annotations

from typing import Annotated

import msgspec


class TopicIn(msgspec.Struct, forbid_unknown_fields=False):
    name: Annotated[str, msgspec.Meta(min_length=1)]


class TopicOut(msgspec.Struct):
    name: str
    id: int
