"""One reaction per user and situation, enforced by the database.

Duplicates are removed first, keeping each pair's newest row. Safe while the previous
version serves: it only ever updates or inserts one reaction per pair.

Revision ID: c3f1a9d2e4b7
Revises: bb9ea76cc252
Create Date: 2025-01-01 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c3f1a9d2e4b7"
down_revision: str | None = "bb9ea76cc252"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# expand: the release before this one runs on the schema it produces:
# the previous release writes one reaction per pair anyway.
schema_change: str = "expand"


def upgrade() -> None:
    op.execute(
        """
        DELETE FROM reactions WHERE id IN (
            SELECT id FROM (
                SELECT id, row_number() OVER (
                    PARTITION BY situation_id, user_id
                    ORDER BY created_at DESC, id DESC
                ) AS position
                FROM reactions
                WHERE situation_id IS NOT NULL AND user_id IS NOT NULL
            ) AS ranked
            WHERE position > 1
        )
        """
    )
    with op.batch_alter_table("reactions") as batch:
        batch.create_unique_constraint("uq_reactions_situation_user", ["situation_id", "user_id"])


def downgrade() -> None:
    with op.batch_alter_table("reactions") as batch:
        batch.drop_constraint("uq_reactions_situation_user", type_="unique")
