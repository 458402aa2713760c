"""Comment payloads. The commenter is shown as {id, name, picture}: never an email."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from eq_backend.domain.users.schemas import UserBrief
from eq_backend.text_limits import CommentText
from eq_backend.types import DbInt

Content = CommentText


class CommentIn(msgspec.Struct):
    content: Content


class CommentWithSituationIn(msgspec.Struct):
    content: Content
    situation_id: DbInt


class CommentUpdate(msgspec.Struct):
    content: Content | None = None


class CommentOut(msgspec.Struct):
    content: str
    situation_id: int | None
    id: int
    user_id: int | None
    sentiment_analysis: dict[str, Any] | None
    created_at: datetime
    user: UserBrief | None
