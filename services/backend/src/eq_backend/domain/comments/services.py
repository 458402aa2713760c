"""Comment reads and writes; every create and update scores the text's sentiment."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Integer, Select, String, bindparam, delete, insert, select, text, update

from eq_backend.db.engine import Database
from eq_backend.db.tables import comments, users
from eq_backend.db.values import as_utc, json_object
from eq_backend.domain.comments.schemas import CommentOut
from eq_backend.domain.comments.sentiment import score_sentiment
from eq_backend.domain.situations.feed_pages import FeedPages
from eq_backend.domain.situations.services import ensure_situation, situation_not_found
from eq_backend.domain.users.schemas import UserBrief
from eq_backend.errors import Forbidden, NotFound


def _select_comments() -> Select[Any]:
    return select(
        comments.c.content,
        comments.c.situation_id,
        comments.c.id,
        comments.c.user_id,
        comments.c.sentiment_analysis,
        comments.c.created_at,
        users.c.name,
        users.c.picture,
    ).select_from(comments.outerjoin(users, users.c.id == comments.c.user_id))


def _comment_out(row: Any) -> CommentOut:
    return CommentOut(
        content=row.content,
        situation_id=row.situation_id,
        id=row.id,
        user_id=row.user_id,
        sentiment_analysis=json_object(row.sentiment_analysis),
        created_at=as_utc(row.created_at),
        user=UserBrief(id=row.user_id, name=row.name, picture=row.picture)
        if row.user_id is not None
        else None,
    )


def _sentiment_columns(content: str) -> dict[str, Any]:
    result = score_sentiment(content)
    return {
        "content": content,
        # The column is an integer: the score in hundredths (−100…100).
        "sentiment_score": round(result.score * 100),
        "sentiment_label": result.sentiment,
        "sentiment_analysis": msgspec.to_builtins(result),
    }


# PostgreSQL: a comment in ONE statement, run in autocommit (so atomic); no row back
# means no such situation (see _PG_REACT in eq_backend.domain.situations.services).
_PG_ADD = text(
    """
WITH added AS (
    INSERT INTO comments
        (situation_id, user_id, content, sentiment_score, sentiment_label, sentiment_analysis)
    SELECT id, :user_id, :content, :sentiment_score, :sentiment_label,
           CAST(:sentiment_analysis AS json)
    FROM situations WHERE id = :situation_id
    RETURNING content, situation_id, id, user_id, sentiment_analysis, created_at
)
SELECT a.content, a.situation_id, a.id, a.user_id, a.sentiment_analysis, a.created_at,
       u.name, u.picture
FROM added a LEFT JOIN users u ON u.id = a.user_id
"""
).bindparams(
    bindparam("user_id", type_=Integer),
    bindparam("content", type_=String),
    bindparam("sentiment_score", type_=Integer),
    bindparam("sentiment_label", type_=String),
    bindparam("sentiment_analysis", type_=String),
    bindparam("situation_id", type_=Integer),
)


def _comment_not_found() -> NotFound:
    return NotFound("Comment not found")


class CommentService:
    def __init__(self, db: Database, pages: FeedPages) -> None:
        self.db = db
        # The feed shows comment counts: told of every committed change.
        self.pages = pages

    async def for_situation(self, situation_id: int) -> list[CommentOut]:
        async with self.db.connect() as conn:
            await ensure_situation(conn, situation_id)
            rows = (
                await conn.execute(
                    _select_comments()
                    .where(comments.c.situation_id == situation_id)
                    .order_by(comments.c.created_at, comments.c.id)
                )
            ).all()
        return [_comment_out(r) for r in rows]

    async def get(self, comment_id: int) -> CommentOut:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(_select_comments().where(comments.c.id == comment_id))
            ).first()
        if row is None:
            raise _comment_not_found()
        return _comment_out(row)

    async def create(self, caller_id: int, situation_id: int, content: str) -> CommentOut:
        if self.db.dialect == "postgresql":
            columns = _sentiment_columns(content)
            params = {
                **columns,
                "sentiment_analysis": msgspec.json.encode(columns["sentiment_analysis"]).decode(),
                "user_id": caller_id,
                "situation_id": situation_id,
            }
            rows = await self.db.fetch_all(_PG_ADD, params)
            if not rows:
                raise situation_not_found()
            self.pages.comments_changed(situation_id)
            return _comment_out(rows[0])
        async with self.db.begin() as conn:
            await ensure_situation(conn, situation_id)
            comment_id = (
                await conn.execute(
                    insert(comments)
                    .values(
                        situation_id=situation_id, user_id=caller_id, **_sentiment_columns(content)
                    )
                    .returning(comments.c.id)
                )
            ).scalar_one()
            row = (await conn.execute(_select_comments().where(comments.c.id == comment_id))).one()
        self.pages.comments_changed(situation_id)
        return _comment_out(row)

    async def _owned(self, conn: Any, comment_id: int, caller_id: int) -> int | None:
        """The comment's situation id, once the caller is known to be its author."""
        row = (
            await conn.execute(
                select(comments.c.user_id, comments.c.situation_id).where(
                    comments.c.id == comment_id
                )
            )
        ).first()
        if row is None:
            raise _comment_not_found()
        if row.user_id != caller_id:
            raise Forbidden("Not allowed to modify this comment")
        situation_id: int | None = row.situation_id
        return situation_id

    async def update(self, caller_id: int, comment_id: int, content: str | None) -> CommentOut:
        # The feed shows no comment's text: an edit changes nothing there.
        async with self.db.begin() as conn:
            await self._owned(conn, comment_id, caller_id)
            if content is not None:
                await conn.execute(
                    update(comments)
                    .where(comments.c.id == comment_id)
                    .values(**_sentiment_columns(content))
                )
            row = (await conn.execute(_select_comments().where(comments.c.id == comment_id))).one()
        return _comment_out(row)

    async def delete(self, caller_id: int, comment_id: int) -> None:
        async with self.db.begin() as conn:
            situation_id = await self._owned(conn, comment_id, caller_id)
            await conn.execute(delete(comments).where(comments.c.id == comment_id))
        if situation_id is not None:
            self.pages.comments_changed(situation_id)
