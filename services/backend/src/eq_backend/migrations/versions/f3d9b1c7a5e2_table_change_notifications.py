"""Every change to a table the app caches reads of is announced on `eq_table_changes`.

A statement-level trigger on topics, situations, comments, reactions and users runs
`pg_notify('eq_table_changes', <table name>)` after each INSERT, UPDATE, DELETE or TRUNCATE.
PostgreSQL delivers notifications at commit (none for a rolled-back transaction) and
folds repeats of one table within a transaction into one. Each app process listens and
drops its cached reads of that table (eq_backend.readcache), whoever made the change: a
replica, the migration Job, psql. Adding triggers takes a brief lock per table and
changes nothing for the version still serving.

PostgreSQL only; SQLite (single process) does not cache.

Revision ID: f3d9b1c7a5e2
Revises: e7c5a1f3b9d2
Create Date: 2026-11-27 08:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "f3d9b1c7a5e2"
down_revision: str | None = "e7c5a1f3b9d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# expand: the release before this one runs on the schema it produces:
# triggers only; the previous release ignores the notifications.
schema_change: str = "expand"

CHANNEL = "eq_table_changes"
TABLES = ("topics", "situations", "comments", "reactions", "users")

_FUNCTION = f"""
CREATE FUNCTION notify_table_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END $$;
"""


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgres():
        return
    op.execute(_FUNCTION)
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_notify_change "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION notify_table_change()"
        )


def downgrade() -> None:
    if not _postgres():
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify_change ON {table}")
    op.execute("DROP FUNCTION IF EXISTS notify_table_change()")
