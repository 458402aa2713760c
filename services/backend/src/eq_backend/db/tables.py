"""Table definitions (SQLAlchemy Core) matching the schema at Alembic head.

Queries use Core rather than the ORM: the hot paths (feed, topics) stay cheap per request.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)

metadata = MetaData()


def _created_at() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), server_default=func.now())


users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("google_id", String, unique=True),
    Column("email", String, nullable=False, unique=True),
    Column("name", String),
    Column("picture", String),
    Column("bio", Text),
    Column("encrypted_refresh_token", Text),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), server_default=func.now()),
)

topics = Table(
    "topics",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False, unique=True),
)

situations = Table(
    "situations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("topic_id", Integer, ForeignKey("topics.id", ondelete="SET NULL"), index=True),
    Column("user_id", Integer, ForeignKey("users.id"), index=True),
    Column("context", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("image_url", String),
    Column("is_contributed", Boolean, server_default=false(), nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), index=True),
    # The feed's order (migration e7c5a1f3b9d2).
    Index("ix_situations_created_at_id", "created_at", "id"),
)

answers = Table(
    "answers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("situation_id", Integer, ForeignKey("situations.id", ondelete="CASCADE")),
    Column("user_id", Integer, ForeignKey("users.id")),
    Column("answer_text", Text, nullable=False),
    Column("scores", JSON),
    Column("reasoning", JSON),
    _created_at(),
)

results = Table(
    "results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("total_scores", JSON),
    _created_at(),
)

comments = Table(
    "comments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("situation_id", Integer, ForeignKey("situations.id", ondelete="CASCADE"), index=True),
    Column("user_id", Integer, ForeignKey("users.id"), index=True),
    Column("content", Text, nullable=False),
    Column("sentiment_score", Integer),
    Column("sentiment_label", String),
    Column("sentiment_analysis", JSON),
    _created_at(),
)

reactions = Table(
    "reactions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("situation_id", Integer, ForeignKey("situations.id", ondelete="CASCADE"), index=True),
    Column("user_id", Integer, ForeignKey("users.id"), index=True),
    Column("reaction_type", String, nullable=False, index=True),
    _created_at(),
    UniqueConstraint("situation_id", "user_id", name="uq_reactions_situation_user"),
)

COUNTED_TABLES = ("users", "topics", "situations", "comments", "reactions", "answers")
