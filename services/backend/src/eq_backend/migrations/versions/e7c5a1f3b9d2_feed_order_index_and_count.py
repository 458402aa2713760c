"""The feed's order gets its own index; the number of situations is kept by triggers.

- `ix_situations_created_at_id` on (created_at, id) serves `ORDER BY created_at, id`
  (either direction) with LIMIT/OFFSET without a sort.
- `situation_count` holds one row with the exact number of situations, maintained by
  statement-level triggers (INSERT, DELETE, TRUNCATE). The feed reads it instead of
  `count(*)` over the whole table on every page (a third of the query's time, growing
  with the table). Every writer (any replica, psql, a TRUNCATE) keeps it exact.

PostgreSQL only; on SQLite the feed keeps counting rows.

Revision ID: e7c5a1f3b9d2
Revises: d4a2b8e6f1c9
Create Date: 2026-11-27 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e7c5a1f3b9d2"
down_revision: str | None = "d4a2b8e6f1c9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# expand: the release before this one runs on the schema it produces:
# an index, a new table and triggers the previous release never reads.
schema_change: str = "expand"

_UPGRADE = """
CREATE TABLE situation_count (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    n bigint NOT NULL
);
LOCK TABLE situations IN SHARE MODE;
INSERT INTO situation_count (one, n) SELECT true, count(*) FROM situations;

CREATE FUNCTION situation_count_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE situation_count SET n = n + (SELECT count(*) FROM added_rows);
    RETURN NULL;
END $$;
CREATE FUNCTION situation_count_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE situation_count SET n = n - (SELECT count(*) FROM removed_rows);
    RETURN NULL;
END $$;
CREATE FUNCTION situation_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE situation_count SET n = 0;
    RETURN NULL;
END $$;

CREATE TRIGGER situation_count_insert AFTER INSERT ON situations
    REFERENCING NEW TABLE AS added_rows
    FOR EACH STATEMENT EXECUTE FUNCTION situation_count_added();
CREATE TRIGGER situation_count_delete AFTER DELETE ON situations
    REFERENCING OLD TABLE AS removed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION situation_count_removed();
CREATE TRIGGER situation_count_truncate AFTER TRUNCATE ON situations
    FOR EACH STATEMENT EXECUTE FUNCTION situation_count_truncated();
"""

_DOWNGRADE = """
DROP TRIGGER IF EXISTS situation_count_insert ON situations;
DROP TRIGGER IF EXISTS situation_count_delete ON situations;
DROP TRIGGER IF EXISTS situation_count_truncate ON situations;
DROP FUNCTION IF EXISTS situation_count_added();
DROP FUNCTION IF EXISTS situation_count_removed();
DROP FUNCTION IF EXISTS situation_count_truncated();
DROP TABLE IF EXISTS situation_count;
"""


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_index("ix_situations_created_at_id", "situations", ["created_at", "id"])
    if _postgres():
        op.execute(_UPGRADE)


def downgrade() -> None:
    if _postgres():
        op.execute(_DOWNGRADE)
    op.drop_index("ix_situations_created_at_id", table_name="situations")
