"""Changes to situations, comments and reactions are announced with the rows they touch.

The triggers of f3d9b1c7a5e2 announce a table name per statement, so a reader can only
drop everything that read the table: one reaction emptied every cached feed page. These
statement-level triggers (transition tables, one per INSERT, UPDATE and DELETE) add a
second notification on the same channel, `<table>:<keys>`:

- situations: `situations:<id>,<id>...` (a row, or the feed's order and total, changed)
- comments: `comments:<situation id>,...` (those situations' comment counts)
- reactions: `reactions:<situation id>/<user id>,...` (those situations' counts and those
  users' own reactions)

A payload that would pass PostgreSQL's 8000-byte limit, and TRUNCATE, send `<table>:*`.
The table-name notifications stay: a version still serving listens to those (and ignores
these, which name no table it knows); a later contract revision can drop them once no
serving version needs them.

PostgreSQL only; SQLite (single process) does not cache.

Revision ID: b6e1d9a3c7f4
Revises: f3d9b1c7a5e2
Create Date: 2026-11-29 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b6e1d9a3c7f4"
down_revision: str | None = "f3d9b1c7a5e2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# expand: the release before this one runs on the schema it produces:
# triggers only; the previous release ignores the row notifications.
schema_change: str = "expand"

CHANNEL = "eq_table_changes"
# What identifies a change of each table for a reader, as SQL over one of its rows.
KEYS = {
    "situations": "id::text",
    "comments": "situation_id::text",
    "reactions": "situation_id || '/' || user_id",
}
EVENTS = {
    "insert": "REFERENCING NEW TABLE AS changed_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows",
    "delete": "REFERENCING OLD TABLE AS changed_rows",
}

_SEND = f"""
CREATE FUNCTION notify_row_keys(tab text, keys text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF keys IS NULL THEN
        RETURN;  -- the statement changed no row
    END IF;
    IF octet_length(keys) > 7900 THEN
        keys := '*';
    END IF;
    PERFORM pg_notify('{CHANNEL}', tab || ':' || keys);
END $$;
CREATE FUNCTION notify_rows_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME || ':*');
    RETURN NULL;
END $$;
"""


def _function(table: str, key: str) -> str:
    # Only this module's constants are formatted in.
    return f"""
CREATE FUNCTION notify_{table}_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keys text;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        SELECT string_agg(DISTINCT k, ',') INTO keys FROM (
            SELECT {key} AS k FROM changed_rows UNION SELECT {key} FROM old_rows
        ) AS both_sides;
    ELSE
        SELECT string_agg(DISTINCT {key}, ',') INTO keys FROM changed_rows;
    END IF;
    PERFORM notify_row_keys(TG_TABLE_NAME, keys);
    RETURN NULL;
END $$;
"""  # noqa: S608


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgres():
        return
    op.execute(_SEND)
    for table, key in KEYS.items():
        op.execute(_function(table, key))
        for event, referencing in EVENTS.items():
            op.execute(
                f"CREATE TRIGGER {table}_notify_{event}_rows AFTER {event.upper()} ON {table} "
                f"{referencing} FOR EACH STATEMENT EXECUTE FUNCTION notify_{table}_rows()"
            )
        op.execute(
            f"CREATE TRIGGER {table}_notify_truncated_rows AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION notify_rows_truncated()"
        )


def downgrade() -> None:
    if not _postgres():
        return
    for table in KEYS:
        for event in (*EVENTS, "truncated"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_notify_{event}_rows ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS notify_{table}_rows()")
    op.execute("DROP FUNCTION IF EXISTS notify_rows_truncated()")
    op.execute("DROP FUNCTION IF EXISTS notify_row_keys(text, text)")
