"""Seed data: four topics with one situation each. Idempotent."""

from __future__ import annotations

from sqlalchemy import func, insert, select

from eq_backend.db.engine import Database
from eq_backend.db.tables import situations, topics

SEED: tuple[tuple[str, str, str], ...] = (
    (
        "Tình yêu",
        "Người yêu của bạn quên mất ngày kỷ niệm quan trọng của hai người.",
        "Bạn sẽ nói gì và làm gì trong tình huống này?",
    ),
    (
        "Công sở",
        "Đồng nghiệp nhận công lao từ dự án mà bạn đã làm phần lớn công việc.",
        "Bạn sẽ phản ứng như thế nào?",
    ),
    (
        "Gia đình",
        "Bố mẹ phản đối quyết định chọn nghề nghiệp của bạn.",
        "Bạn sẽ trò chuyện với bố mẹ ra sao?",
    ),
    (
        "Bạn bè",
        "Một người bạn thân hủy hẹn với bạn vào phút chót lần thứ ba liên tiếp.",
        "Bạn sẽ nói gì với người bạn đó?",
    ),
)


async def seed(db: Database) -> int:
    """Create missing seed topics, and one situation for each seed topic that has none.
    Returns how many rows were inserted."""
    inserted = 0
    async with db.begin() as conn:
        for name, context, question in SEED:
            topic_id = (
                await conn.execute(select(topics.c.id).where(topics.c.name == name))
            ).scalar()
            if topic_id is None:
                topic_id = (
                    await conn.execute(insert(topics).values(name=name).returning(topics.c.id))
                ).scalar_one()
                inserted += 1
            has_situation = (
                await conn.execute(
                    select(func.count())
                    .select_from(situations)
                    .where(situations.c.topic_id == topic_id)
                )
            ).scalar_one()
            if not has_situation:
                await conn.execute(
                    insert(situations).values(topic_id=topic_id, context=context, question=question)
                )
                inserted += 1
    return inserted
