"""Initial schema, identical to the one existing deployments carry.

Revision ID: bb9ea76cc252
Revises:
Create Date: 2024-01-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bb9ea76cc252"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# expand: the release before this one runs on the schema it produces:
# creates the tables; nothing ran before it.
schema_change: str = "expand"


def _timestamp(name: str = "created_at") -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("google_id", sa.String(), nullable=True),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("picture", sa.String(), nullable=True),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column("encrypted_refresh_token", sa.Text(), nullable=True),
        _timestamp(),
        _timestamp("updated_at"),
        sa.UniqueConstraint("google_id", name="users_google_id_key"),
        sa.UniqueConstraint("email", name="users_email_key"),
    )
    op.create_table(
        "topics",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.UniqueConstraint("name", name="topics_name_key"),
    )
    op.create_table(
        "situations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("topic_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("image_url", sa.String(), nullable=True),
        sa.Column("is_contributed", sa.Boolean(), server_default=sa.false(), nullable=False),
        _timestamp(),
        sa.ForeignKeyConstraint(["topic_id"], ["topics.id"], name="situations_topic_id_fkey"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="situations_user_id_fkey"),
    )
    op.create_index("ix_situations_topic_id", "situations", ["topic_id"])
    op.create_index("ix_situations_user_id", "situations", ["user_id"])
    op.create_index("ix_situations_created_at", "situations", ["created_at"])
    op.create_table(
        "answers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("situation_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("answer_text", sa.Text(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=True),
        sa.Column("reasoning", sa.JSON(), nullable=True),
        _timestamp(),
        sa.ForeignKeyConstraint(
            ["situation_id"], ["situations.id"], name="answers_situation_id_fkey"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="answers_user_id_fkey"),
    )
    op.create_table(
        "results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("total_scores", sa.JSON(), nullable=True),
        _timestamp(),
    )
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("situation_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sentiment_score", sa.Integer(), nullable=True),
        sa.Column("sentiment_label", sa.String(), nullable=True),
        sa.Column("sentiment_analysis", sa.JSON(), nullable=True),
        _timestamp(),
        sa.ForeignKeyConstraint(
            ["situation_id"], ["situations.id"], name="comments_situation_id_fkey"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="comments_user_id_fkey"),
    )
    op.create_index("ix_comments_situation_id", "comments", ["situation_id"])
    op.create_index("ix_comments_user_id", "comments", ["user_id"])
    op.create_table(
        "reactions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("situation_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("reaction_type", sa.String(), nullable=False),
        _timestamp(),
        sa.ForeignKeyConstraint(
            ["situation_id"], ["situations.id"], name="reactions_situation_id_fkey"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="reactions_user_id_fkey"),
    )
    op.create_index("ix_reactions_situation_id", "reactions", ["situation_id"])
    op.create_index("ix_reactions_user_id", "reactions", ["user_id"])
    op.create_index("ix_reactions_reaction_type", "reactions", ["reaction_type"])


def downgrade() -> None:
    for table in ("reactions", "comments", "results", "answers", "situations", "topics", "users"):
        op.drop_table(table)
