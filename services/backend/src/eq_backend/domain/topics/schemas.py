"""Topic payloads."""

from __future__ import annotations

import msgspec

from eq_backend.text_limits import TopicName


class TopicIn(msgspec.Struct, forbid_unknown_fields=False):
    name: TopicName


class TopicOut(msgspec.Struct):
    name: str
    id: int
