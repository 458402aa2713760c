"""Topic reads and writes."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from eq_backend.coalesce import Coalescer
from eq_backend.db.engine import Database
from eq_backend.db.tables import situations, topics
from eq_backend.domain.situations.rows import select_situations, situation_out
from eq_backend.domain.situations.schemas import SituationOut
from eq_backend.domain.topics.schemas import TopicOut
from eq_backend.errors import Conflict, NotFound
from eq_backend.readcache import ReadCache, ReadCaches

_LIST = select(topics.c.name, topics.c.id).order_by(topics.c.id).limit(100)
_GET = select(topics.c.name, topics.c.id).where(topics.c.id == bindparam("id"))


def _topic_not_found() -> NotFound:
    return NotFound("Topic not found")


class TopicService:
    def __init__(self, db: Database, caches: ReadCaches) -> None:
        self.db = db
        self._reads: Coalescer[list[TopicOut]] = Coalescer()
        self._cache: ReadCache[list[TopicOut]] = caches.add({"topics"}, max_entries=1)

    async def all(self) -> list[TopicOut]:
        """From the read cache (eq_backend.readcache); on a miss, concurrent calls share
        one read started after they arrived (eq_backend.coalesce)."""
        return await self._cache.get_or_read("all", lambda: self._reads.run("all", self._all))

    async def _all(self) -> list[TopicOut]:
        rows = await self.db.fetch_all(_LIST)
        return [TopicOut(name=r[0], id=r[1]) for r in rows]

    async def get(self, topic_id: int) -> TopicOut:
        rows = await self.db.fetch_all(_GET, {"id": topic_id})
        if not rows:
            raise _topic_not_found()
        return TopicOut(name=rows[0][0], id=rows[0][1])

    async def create(self, name: str) -> TopicOut:
        try:
            async with self.db.connect() as conn:
                row = (
                    await conn.execute(
                        insert(topics).values(name=name).returning(topics.c.name, topics.c.id)
                    )
                ).one()
        except IntegrityError:
            raise Conflict("Topic already exists", errors=[f"topic {name!r} exists"]) from None
        return TopicOut(name=row[0], id=row[1])

    async def update(self, topic_id: int, name: str) -> TopicOut:
        try:
            async with self.db.connect() as conn:
                row = (
                    await conn.execute(
                        update(topics)
                        .where(topics.c.id == topic_id)
                        .values(name=name)
                        .returning(topics.c.name, topics.c.id)
                    )
                ).first()
        except IntegrityError:
            raise Conflict("Topic already exists", errors=[f"topic {name!r} exists"]) from None
        if row is None:
            raise _topic_not_found()
        return TopicOut(name=row[0], id=row[1])

    async def delete(self, topic_id: int) -> None:
        # Situations keep existing without a topic (the feed shows those too).
        async with self.db.begin() as conn:
            await conn.execute(
                update(situations).where(situations.c.topic_id == topic_id).values(topic_id=None)
            )
            result = await conn.execute(delete(topics).where(topics.c.id == topic_id))
        if result.rowcount == 0:
            raise _topic_not_found()

    async def situations(self, topic_id: int) -> list[SituationOut]:
        async with self.db.connect() as conn:
            if (await conn.execute(_GET, {"id": topic_id})).first() is None:
                raise _topic_not_found()
            rows = (
                await conn.execute(
                    select_situations()
                    .where(situations.c.topic_id == topic_id)
                    .order_by(situations.c.id)
                )
            ).all()
        return [situation_out(r) for r in rows]
