"""Turning result rows into situation payloads (shared by topics and situations)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from eq_backend.db.tables import situations
from eq_backend.db.values import as_utc
from eq_backend.domain.situations.schemas import SituationOut

SITUATION_COLUMNS = (
    situations.c.topic_id,
    situations.c.context,
    situations.c.question,
    situations.c.id,
    situations.c.user_id,
    situations.c.created_at,
)


def select_situations() -> Select[Any]:
    return select(*SITUATION_COLUMNS)


def situation_out(row: Any) -> SituationOut:
    return SituationOut(
        topic_id=row.topic_id,
        context=row.context,
        question=row.question,
        id=row.id,
        user_id=row.user_id,
        created_at=as_utc(row.created_at),
    )
