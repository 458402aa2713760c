"""Deleting a situation removes its comments, reactions and answers; deleting a topic
leaves its situations without a topic.

Only foreign-key actions change, so the previous version keeps working unchanged.

Revision ID: d4a2b8e6f1c9
Revises: c3f1a9d2e4b7
Create Date: 2025-01-01 00:00:01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "d4a2b8e6f1c9"
down_revision: str | None = "c3f1a9d2e4b7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# expand: the release before this one runs on the schema it produces:
# only foreign-key actions change.
schema_change: str = "expand"

_CHILDREN = ("comments", "reactions", "answers")


def _replace_fk(table: str, column: str, target: str, ondelete: str | None) -> None:
    name = f"{table}_{column}_fkey"
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(name, type_="foreignkey")
        batch.create_foreign_key(name, target, [column], ["id"], ondelete=ondelete)


def upgrade() -> None:
    for table in _CHILDREN:
        _replace_fk(table, "situation_id", "situations", "CASCADE")
    _replace_fk("situations", "topic_id", "topics", "SET NULL")


def downgrade() -> None:
    for table in _CHILDREN:
        _replace_fk(table, "situation_id", "situations", None)
    _replace_fk("situations", "topic_id", "topics", None)
