"""The feed query: items, author, stats and the viewer's reaction in ONE statement.

Stats are correlated scalar subqueries over indexed columns, so the cost grows with the
page size, not with the number of situations; the total rides along as an uncorrelated
subquery (computed once). No N+1, whatever the page size.

A feed page is sent as JSON assembled from per-item pieces (eq_backend.domain.situations.
feed_pages): each item's JSON without its closing brace (`item_json`), to which the
viewer's reaction is appended. PostgreSQL builds that text itself; elsewhere it is encoded
from the row here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy import Integer, Select, TextClause, bindparam, func, null, select, text

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

# PostgreSQL: the page is cut first on ix_situations_created_at_id (no sort), then joined
# to its author, its counts and the viewer's reaction, each a probe of one index per item:
# the counts are the trigger-maintained situation_stats row (migration a8c4e2f6d1b3), the
# reaction the (situation_id, user_id) unique index (one reaction per user and situation).
# The counts' LIMIT 1 keeps them a probe per item: joined plainly, the planner (which
# cannot know how few rows the page's LIMIT leaves) may hash the whole table instead.
# The total comes from the trigger-maintained situation_count row (migration e7c5a1f3b9d2)
# instead of count(*) over the whole table. Each item comes back as the text `item_json`
# gives elsewhere (json_build_object keeps the key order), so Python only joins bytes.
_PG_FEED = """
SELECT s.id,
       left(json_build_object(
           'id', s.id, 'topic_id', s.topic_id, 'user_id', s.user_id,
           'user', CASE WHEN s.user_id IS NULL THEN NULL ELSE
               json_build_object('id', s.user_id, 'name', u.name, 'picture', u.picture) END,
           'image_url', s.image_url, 'context', s.context, 'question', s.question,
           'created_at', to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
           'stats', json_build_object(
               'comments_count', coalesce(st.comments_count, 0),
               'reactions_count', coalesce(st.reactions_count, 0),
               'upvotes_count', coalesce(st.upvotes_count, 0),
               'downvotes_count', coalesce(st.downvotes_count, 0))
       )::text, -1) AS item,
       {viewer} AS user_reaction,
       (SELECT n FROM situation_count) AS total
FROM (
    SELECT id, topic_id, user_id, image_url, context, question, created_at
    FROM situations ORDER BY created_at {order}, id {order} LIMIT :limit OFFSET :offset
) AS s
LEFT JOIN users u ON u.id = s.user_id
LEFT JOIN LATERAL (
    SELECT comments_count, reactions_count, upvotes_count, downvotes_count
    FROM situation_stats WHERE situation_id = s.id LIMIT 1
) AS st ON true
ORDER BY s.created_at {order}, s.id {order}
"""
_PG_VIEWER = """(
    SELECT x.reaction_type FROM reactions x WHERE x.situation_id = s.id AND x.user_id = :viewer_id
)"""

PG_FEED_TOTAL = text("SELECT n FROM situation_count")


@lru_cache(maxsize=4)
def pg_feed_page_statement(ascending: bool, with_viewer: bool) -> TextClause:
    """The PostgreSQL feed page: id, item (see `item_json`), user_reaction and total per
    row; the same binds as `feed_page_statement`."""
    sql = _PG_FEED.format(
        order="ASC" if ascending else "DESC",
        viewer=_PG_VIEWER if with_viewer else "NULL::varchar",
    )
    params = [bindparam("limit", type_=Integer), bindparam("offset", type_=Integer)]
    if with_viewer:
        params.append(bindparam("viewer_id", type_=Integer))
    return text(sql).bindparams(*params)


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


def _item_fields(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "topic_id": row.topic_id,
        "user_id": row.user_id,
        "user": _author(row),
        "image_url": row.image_url,
        "context": row.context,
        "question": row.question,
        "created_at": feed_time(row.created_at),
        "stats": _stats(row),
    }


def feed_item(row: Any) -> FeedItem:
    return FeedItem(**_item_fields(row), user_reaction=row.user_reaction)


def contributed_item(row: Any) -> ContributedItem:
    return ContributedItem(**_item_fields(row))


def item_json(row: Any) -> bytes:
    """The row's ContributedItem as JSON, without the closing brace."""
    return msgspec.json.encode(contributed_item(row))[:-1]


__all__ = [
    "FEED_TOTAL",
    "PG_FEED_TOTAL",
    "by_author_statement",
    "contributed_item",
    "feed_item",
    "feed_page_statement",
    "item_json",
    "pg_feed_page_statement",
]
