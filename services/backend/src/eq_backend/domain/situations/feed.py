"""The feed query: items, author, stats and the viewer's reaction in ONE statement.

Stats are correlated scalar subqueries over indexed columns, so the cost grows with the
page size, not with the number of situations; the total rides along as an uncorrelated
subquery (computed once). No N+1, whatever the page size.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, Select, bindparam, func, null, select

from eq_backend.db.tables import comments, reactions, situations, users
from eq_backend.db.values import feed_time
from eq_backend.domain.situations.schemas import ContributedItem, FeedItem, Stats
from eq_backend.domain.users.schemas import UserBrief


def _count(table: Any, *conditions: Any) -> Any:
    return (
        select(func.count())
        .select_from(table)
        .where(table.c.situation_id == situations.c.id, *conditions)
        .scalar_subquery()
    )


def _item_columns(with_viewer: bool) -> list[Any]:
    viewer_reaction: Any = null()
    if with_viewer:
        viewer_reaction = (
            select(reactions.c.reaction_type)
            .where(
                reactions.c.situation_id == situations.c.id,
                reactions.c.user_id == bindparam("viewer_id", type_=Integer),
            )
            .order_by(reactions.c.created_at.desc(), reactions.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
    return [
        situations.c.id,
        situations.c.topic_id,
        situations.c.user_id,
        users.c.name.label("author_name"),
        users.c.picture.label("author_picture"),
        situations.c.image_url,
        situations.c.context,
        situations.c.question,
        situations.c.created_at,
        _count(comments).label("comments_count"),
        _count(reactions).label("reactions_count"),
        _count(reactions, reactions.c.reaction_type == "upvote").label("upvotes_count"),
        _count(reactions, reactions.c.reaction_type == "downvote").label("downvotes_count"),
        viewer_reaction.label("user_reaction"),
    ]


def _base(with_viewer: bool) -> Select[Any]:
    return select(*_item_columns(with_viewer)).select_from(
        situations.outerjoin(users, users.c.id == situations.c.user_id)
    )


@lru_cache(maxsize=8)
def feed_page_statement(ascending: bool, with_viewer: bool) -> Select[Any]:
    """One page of the whole feed plus the total; binds limit, offset (and viewer_id)."""
    total = select(func.count()).select_from(situations).scalar_subquery()
    order = (
        (situations.c.created_at.asc(), situations.c.id.asc())
        if ascending
        else (situations.c.created_at.desc(), situations.c.id.desc())
    )
    return (
        _base(with_viewer)
        .add_columns(total.label("total"))
        .order_by(*order)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


FEED_TOTAL = select(func.count()).select_from(situations)


@lru_cache(maxsize=4)
def by_author_statement(with_viewer: bool, contributed_only: bool) -> Select[Any]:
    """Every situation of one author (binds author_id), newest first."""
    stmt = _base(with_viewer).where(situations.c.user_id == bindparam("author_id", type_=Integer))
    if contributed_only:
        stmt = stmt.where(situations.c.is_contributed.is_(True))
    return stmt.order_by(situations.c.created_at.desc(), situations.c.id.desc())


def _stats(row: Any) -> Stats:
    return Stats(
        comments_count=row.comments_count or 0,
        reactions_count=row.reactions_count or 0,
        upvotes_count=row.upvotes_count or 0,
        downvotes_count=row.downvotes_count or 0,
    )


def _author(row: Any) -> UserBrief | None:
    if row.user_id is None:
        return None
    return UserBrief(id=row.user_id, name=row.author_name, picture=row.author_picture)


def feed_item(row: Any) -> FeedItem:
    return FeedItem(
        id=row.id,
        topic_id=row.topic_id,
        user_id=row.user_id,
        user=_author(row),
        image_url=row.image_url,
        context=row.context,
        question=row.question,
        created_at=feed_time(row.created_at),
        stats=_stats(row),
        user_reaction=row.user_reaction,
    )


def contributed_item(row: Any) -> ContributedItem:
    return ContributedItem(
        id=row.id,
        topic_id=row.topic_id,
        user_id=row.user_id,
        user=_author(row),
        image_url=row.image_url,
        context=row.context,
        question=row.question,
        created_at=feed_time(row.created_at),
        stats=_stats(row),
    )


__all__ = [
    "FEED_TOTAL",
    "by_author_statement",
    "contributed_item",
    "feed_item",
    "feed_page_statement",
]
