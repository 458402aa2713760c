"""Situation reads and writes: the feed, contributions, ownership-checked edits, reactions."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Integer, String, bindparam, delete, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from eq_backend.db.engine import Database
from eq_backend.db.tables import answers, comments, reactions, situations, topics, users
from eq_backend.db.values import as_utc
from eq_backend.domain.situations import feed
from eq_backend.domain.situations.feed_pages import FeedPages, PageRow
from eq_backend.domain.situations.rows import SITUATION_COLUMNS, select_situations, situation_out
from eq_backend.domain.situations.schemas import (
    ContributedItem,
    ContributedOut,
    ContributeIn,
    FeedItem,
    ReactionOut,
    SituationIn,
    SituationOut,
    SituationUpdate,
)
from eq_backend.domain.users.schemas import UserBrief
from eq_backend.errors import Forbidden, NotFound, Unprocessable
from eq_backend.readcache import ReadCaches


def situation_not_found() -> NotFound:
    return NotFound("Situation not found")


async def ensure_situation(conn: AsyncConnection, situation_id: int) -> Any:
    """The situation's (id, user_id) row, or 404."""
    row = (
        await conn.execute(
            select(situations.c.id, situations.c.user_id).where(situations.c.id == situation_id)
        )
    ).first()
    if row is None:
        raise situation_not_found()
    return row


async def _ensure_topic(conn: AsyncConnection, topic_id: int | None) -> None:
    if topic_id is None:
        return
    found = (await conn.execute(select(topics.c.id).where(topics.c.id == topic_id))).first()
    if found is None:
        raise Unprocessable(
            "Topic not found",
            errors=[f"topic_id: no topic {topic_id}"],
            details={"topic_id": topic_id},
        )


MAX_PAGE = 1_000_000  # keeps the offset a sane integer whatever the client sends


def clamp_feed_query(page: int, limit: int, sort_order: str) -> tuple[int, int, bool]:
    """The feed is lenient: page < 1 → 1; limit outside 1–100 → 10; anything but asc → desc."""
    page = min(max(page, 1), MAX_PAGE)
    if limit < 1 or limit > 100:
        limit = 10
    return page, limit, sort_order.lower() == "asc"


# A reaction with its author's public fields: the shape of ReactionOut.
_REACTIONS_WITH_USER = select(
    reactions.c.situation_id,
    reactions.c.user_id,
    reactions.c.reaction_type,
    reactions.c.id,
    reactions.c.created_at,
    users.c.name,
    users.c.picture,
).select_from(reactions.outerjoin(users, users.c.id == reactions.c.user_id))


# PostgreSQL: a reaction in ONE statement, run in autocommit (so atomic): the insert takes
# its situation from a select, so a missing situation inserts nothing and returns no row
# (a 404), and the reacting user's public fields come back with it. The same steps as the
# transaction below without its four extra round trips, on the feed's busiest write.
_PG_REACT = text(
    """
WITH reacted AS (
    INSERT INTO reactions (situation_id, user_id, reaction_type)
    SELECT id, :user_id, :reaction_type FROM situations WHERE id = :situation_id
    ON CONFLICT (situation_id, user_id) DO UPDATE SET reaction_type = EXCLUDED.reaction_type
    RETURNING situation_id, user_id, reaction_type, id, created_at
)
SELECT r.situation_id, r.user_id, r.reaction_type, r.id, r.created_at, u.name, u.picture
FROM reacted r LEFT JOIN users u ON u.id = r.user_id
"""
).bindparams(
    bindparam("user_id", type_=Integer),
    bindparam("reaction_type", type_=String),
    bindparam("situation_id", type_=Integer),
)


class SituationService:
    def __init__(self, db: Database, caches: ReadCaches) -> None:
        self.db = db
        # Cached feed pages; every write below tells it what it changed once committed.
        self.pages = FeedPages(caches, self._read_page)

    async def feed_body(
        self, viewer_id: int | None, page: int, limit: int, sort_order: str
    ) -> bytes:
        """The feed page's whole response body (eq_backend.domain.situations.feed_pages)."""
        page, limit, ascending = clamp_feed_query(page, limit, sort_order)
        return await self.pages.body(viewer_id, page, limit, ascending)

    def cached_body(
        self, viewer_id: int | None, page: int, limit: int, sort_order: str
    ) -> bytes | None:
        """`feed_body`'s answer when every piece of it is cached, else None."""
        page, limit, ascending = clamp_feed_query(page, limit, sort_order)
        return self.pages.cached(viewer_id, page, limit, ascending)

    async def _read_page(
        self, viewer_id: int | None, page: int, limit: int, ascending: bool
    ) -> tuple[list[PageRow], int]:
        params: dict[str, Any] = {"limit": limit, "offset": (page - 1) * limit}
        if viewer_id is not None:
            params["viewer_id"] = viewer_id
        postgres = self.db.dialect == "postgresql"
        if postgres:
            stmt: Any = feed.pg_feed_page_statement(ascending, viewer_id is not None)
            rows = await self.db.fetch_all(stmt, params)
            items = [PageRow(r.id, r.item.encode(), r.user_reaction) for r in rows]
        else:
            stmt = feed.feed_page_statement(ascending, viewer_id is not None)
            rows = await self.db.fetch_all(stmt, params)
            items = [PageRow(r.id, feed.item_json(r), r.user_reaction) for r in rows]
        if rows:
            return items, int(rows[0].total)
        total_stmt: Any = feed.PG_FEED_TOTAL if postgres else feed.FEED_TOTAL
        return items, int((await self.db.fetch_all(total_stmt))[0][0])

    async def by_author(self, author_id: int, viewer_id: int | None) -> list[FeedItem]:
        params: dict[str, Any] = {"author_id": author_id}
        if viewer_id is not None:
            params["viewer_id"] = viewer_id
        async with self.db.connect() as conn:
            found = (await conn.execute(select(users.c.id).where(users.c.id == author_id))).first()
            if found is None:
                raise NotFound("User not found")
            stmt = feed.by_author_statement(viewer_id is not None, contributed_only=False)
            rows = (await conn.execute(stmt, params)).all()
        return [feed.feed_item(r) for r in rows]

    async def contributed(self, caller_id: int) -> list[ContributedItem]:
        stmt = feed.by_author_statement(False, contributed_only=True)
        async with self.db.connect() as conn:
            rows = (await conn.execute(stmt, {"author_id": caller_id})).all()
        return [feed.contributed_item(r) for r in rows]

    async def get(self, situation_id: int) -> SituationOut:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(select_situations().where(situations.c.id == situation_id))
            ).first()
        if row is None:
            raise situation_not_found()
        return situation_out(row)

    async def mine(self, caller_id: int) -> list[SituationOut]:
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select_situations()
                    .where(situations.c.user_id == caller_id)
                    .order_by(situations.c.created_at.desc(), situations.c.id.desc())
                )
            ).all()
        return [situation_out(r) for r in rows]

    async def create(self, caller_id: int, data: SituationIn) -> SituationOut:
        async with self.db.begin() as conn:
            await _ensure_topic(conn, data.topic_id)
            row = (
                await conn.execute(
                    insert(situations)
                    .values(
                        topic_id=data.topic_id,
                        user_id=caller_id,
                        context=data.context,
                        question=data.question,
                    )
                    .returning(*SITUATION_COLUMNS)
                )
            ).one()
        self.pages.situation_changed(row.id)
        return situation_out(row)

    async def contribute(self, caller_id: int, data: ContributeIn) -> ContributedOut:
        async with self.db.begin() as conn:
            await _ensure_topic(conn, data.topic_id)
            row = (
                await conn.execute(
                    insert(situations)
                    .values(
                        topic_id=data.topic_id,
                        user_id=caller_id,
                        context=data.context,
                        question=data.question,
                        image_url=(data.image_url or "").strip() or None,
                        is_contributed=True,
                    )
                    .returning(*SITUATION_COLUMNS, situations.c.image_url)
                )
            ).one()
        self.pages.situation_changed(row.id)
        return ContributedOut(
            id=row.id,
            topic_id=row.topic_id,
            user_id=row.user_id,
            image_url=row.image_url,
            context=row.context,
            question=row.question,
            created_at=as_utc(row.created_at),
        )

    async def _owned(self, conn: AsyncConnection, situation_id: int, caller_id: int) -> None:
        row = await ensure_situation(conn, situation_id)
        if row.user_id != caller_id:
            raise Forbidden("Not allowed to modify this situation")

    async def update(
        self, caller_id: int, situation_id: int, data: SituationUpdate
    ) -> SituationOut:
        changes = {
            name: getattr(data, name)
            for name in data.__struct_fields__
            if getattr(data, name) is not msgspec.UNSET
        }
        if "image_url" in changes:
            changes["image_url"] = (changes["image_url"] or "").strip() or None
        async with self.db.begin() as conn:
            await self._owned(conn, situation_id, caller_id)
            if "topic_id" in changes:
                await _ensure_topic(conn, changes["topic_id"])
            stmt = select_situations().where(situations.c.id == situation_id)
            if changes:
                await conn.execute(
                    update(situations).where(situations.c.id == situation_id).values(**changes)
                )
            row = (await conn.execute(stmt)).one()
        if changes:
            self.pages.situation_changed(situation_id)
        return situation_out(row)

    async def delete(self, caller_id: int, situation_id: int) -> None:
        async with self.db.begin() as conn:
            await self._owned(conn, situation_id, caller_id)
            # Explicit child deletes keep this correct on a schema still at bb9ea76cc252.
            for child in (comments, reactions, answers):
                await conn.execute(delete(child).where(child.c.situation_id == situation_id))
            await conn.execute(delete(situations).where(situations.c.id == situation_id))
        self.pages.situation_changed(situation_id)

    # Reactions -----------------------------------------------------------------------

    async def reactions(self, situation_id: int) -> list[ReactionOut]:
        async with self.db.connect() as conn:
            await ensure_situation(conn, situation_id)
            rows = (
                await conn.execute(
                    _REACTIONS_WITH_USER.where(reactions.c.situation_id == situation_id).order_by(
                        reactions.c.created_at, reactions.c.id
                    )
                )
            ).all()
        return [_reaction_out(r) for r in rows]

    async def react(self, caller_id: int, situation_id: int, reaction_type: str) -> ReactionOut:
        """Create the caller's reaction, or change its type (one per user and situation)."""
        if self.db.dialect == "postgresql":
            params = {
                "user_id": caller_id,
                "reaction_type": reaction_type,
                "situation_id": situation_id,
            }
            rows = await self.db.fetch_all(_PG_REACT, params)
            if not rows:
                raise situation_not_found()
            self.pages.reaction_changed(situation_id, caller_id)
            return _reaction_out(rows[0])
        dialect_insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        values = dialect_insert(reactions).values(
            situation_id=situation_id, user_id=caller_id, reaction_type=reaction_type
        )
        stmt = values.on_conflict_do_update(
            index_elements=[reactions.c.situation_id, reactions.c.user_id],
            set_={"reaction_type": values.excluded.reaction_type},
        ).returning(reactions.c.id)
        async with self.db.begin() as conn:
            await ensure_situation(conn, situation_id)
            reaction_id = (await conn.execute(stmt)).scalar_one()
            row = (
                await conn.execute(_REACTIONS_WITH_USER.where(reactions.c.id == reaction_id))
            ).one()
        self.pages.reaction_changed(situation_id, caller_id)
        return _reaction_out(row)

    async def unreact(self, caller_id: int, situation_id: int, reaction_type: str | None) -> None:
        conditions = [reactions.c.situation_id == situation_id, reactions.c.user_id == caller_id]
        if reaction_type is not None:
            conditions.append(reactions.c.reaction_type == reaction_type)
        async with self.db.begin() as conn:
            await ensure_situation(conn, situation_id)
            result = await conn.execute(delete(reactions).where(*conditions))
        if result.rowcount == 0:
            raise NotFound("Reaction not found")
        self.pages.reaction_changed(situation_id, caller_id)


def _reaction_out(row: Any) -> ReactionOut:
    return ReactionOut(
        situation_id=row.situation_id,
        user_id=row.user_id,
        reaction_type=row.reaction_type,
        id=row.id,
        created_at=as_utc(row.created_at),
        user=UserBrief(id=row.user_id, name=row.name, picture=row.picture)
        if row.user_id is not None
        else None,
    )
