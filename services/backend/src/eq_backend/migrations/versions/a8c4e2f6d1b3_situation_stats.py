"""Each situation's comment and reaction counts are kept in `situation_stats` by triggers.

The feed showed counts computed on every read: a count over the situation's comments and
an aggregate over its reactions, per item of the page. That grew with an item's
popularity and was about half of the feed statement's time in PostgreSQL. Now one row
per situation holds the four counts the feed shows, read by primary key:

- `comments_count`: rows of `comments` naming the situation;
- `reactions_count`, `upvotes_count`, `downvotes_count`: rows of `reactions` naming it,
  all of them and those of each type.

Row-level triggers on `comments` and `reactions` adjust the counts in the writing
statement's own transaction, whoever writes (any release, psql), so they stay exact: an
INSERT adds, a DELETE (a situation's cascade included) subtracts, an UPDATE that moves a
row or changes its type does both, a TRUNCATE zeroes. A row is created with its
situation's first comment or reaction; a situation without one has no row (the reader
shows zeros) and a deleted situation's row goes with it (ON DELETE CASCADE).

PostgreSQL only; on SQLite the feed keeps counting rows.

Revision ID: a8c4e2f6d1b3
Revises: b6e1d9a3c7f4
Create Date: 2026-11-30 06:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a8c4e2f6d1b3"
down_revision: str | None = "b6e1d9a3c7f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# expand: the release before this one runs on the schema it produces: a new table it
# never reads, and triggers that keep it exact under that release's writes too.
schema_change: str = "expand"

_UPGRADE = """
CREATE TABLE situation_stats (
    situation_id integer PRIMARY KEY REFERENCES situations (id) ON DELETE CASCADE,
    comments_count integer NOT NULL DEFAULT 0,
    reactions_count integer NOT NULL DEFAULT 0,
    upvotes_count integer NOT NULL DEFAULT 0,
    downvotes_count integer NOT NULL DEFAULT 0
);
LOCK TABLE comments, reactions IN SHARE MODE;
INSERT INTO situation_stats
    (situation_id, comments_count, reactions_count, upvotes_count, downvotes_count)
SELECT situation_id, sum(comments), sum(reactions), sum(upvotes), sum(downvotes)
FROM (
    SELECT situation_id, 1 AS comments, 0 AS reactions, 0 AS upvotes, 0 AS downvotes
    FROM comments WHERE situation_id IS NOT NULL
    UNION ALL
    SELECT situation_id, 0, 1, (reaction_type = 'upvote')::int,
           (reaction_type = 'downvote')::int
    FROM reactions WHERE situation_id IS NOT NULL
) AS each_row
GROUP BY situation_id;

-- Adds `sign` times one row's worth of counts to its situation's stats.
CREATE FUNCTION situation_stats_add(
    situation integer, comments integer, reactions integer, upvotes integer,
    downvotes integer
) RETURNS void LANGUAGE sql AS $$
    INSERT INTO situation_stats AS st
        (situation_id, comments_count, reactions_count, upvotes_count, downvotes_count)
    VALUES (situation, comments, reactions, upvotes, downvotes)
    ON CONFLICT (situation_id) DO UPDATE SET
        comments_count = st.comments_count + EXCLUDED.comments_count,
        reactions_count = st.reactions_count + EXCLUDED.reactions_count,
        upvotes_count = st.upvotes_count + EXCLUDED.upvotes_count,
        downvotes_count = st.downvotes_count + EXCLUDED.downvotes_count
$$;

CREATE FUNCTION situation_stats_comment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.situation_id IS NOT NULL THEN
        -- A situation being deleted has no row left to update: nothing to subtract from.
        UPDATE situation_stats SET comments_count = comments_count - 1
        WHERE situation_id = OLD.situation_id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.situation_id IS NOT NULL THEN
        PERFORM situation_stats_add(NEW.situation_id, 1, 0, 0, 0);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION situation_stats_reaction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.situation_id IS NOT NULL THEN
        UPDATE situation_stats SET
            reactions_count = reactions_count - 1,
            upvotes_count = upvotes_count - (OLD.reaction_type = 'upvote')::int,
            downvotes_count = downvotes_count - (OLD.reaction_type = 'downvote')::int
        WHERE situation_id = OLD.situation_id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.situation_id IS NOT NULL THEN
        PERFORM situation_stats_add(
            NEW.situation_id, 0, 1, (NEW.reaction_type = 'upvote')::int,
            (NEW.reaction_type = 'downvote')::int);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION situation_stats_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'comments' THEN
        UPDATE situation_stats SET comments_count = 0;
    ELSE
        UPDATE situation_stats SET reactions_count = 0, upvotes_count = 0, downvotes_count = 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER situation_stats_comment_written AFTER INSERT OR DELETE ON comments
    FOR EACH ROW EXECUTE FUNCTION situation_stats_comment();
CREATE TRIGGER situation_stats_comment_moved AFTER UPDATE OF situation_id ON comments
    FOR EACH ROW WHEN (OLD.situation_id IS DISTINCT FROM NEW.situation_id)
    EXECUTE FUNCTION situation_stats_comment();
CREATE TRIGGER situation_stats_reaction_written AFTER INSERT OR DELETE ON reactions
    FOR EACH ROW EXECUTE FUNCTION situation_stats_reaction();
CREATE TRIGGER situation_stats_reaction_changed
    AFTER UPDATE OF situation_id, reaction_type ON reactions
    FOR EACH ROW WHEN (OLD.situation_id IS DISTINCT FROM NEW.situation_id
                       OR OLD.reaction_type IS DISTINCT FROM NEW.reaction_type)
    EXECUTE FUNCTION situation_stats_reaction();
CREATE TRIGGER situation_stats_comments_truncated AFTER TRUNCATE ON comments
    FOR EACH STATEMENT EXECUTE FUNCTION situation_stats_truncated();
CREATE TRIGGER situation_stats_reactions_truncated AFTER TRUNCATE ON reactions
    FOR EACH STATEMENT EXECUTE FUNCTION situation_stats_truncated();
"""

_DOWNGRADE = """
DROP TRIGGER IF EXISTS situation_stats_comment_written ON comments;
DROP TRIGGER IF EXISTS situation_stats_comment_moved ON comments;
DROP TRIGGER IF EXISTS situation_stats_comments_truncated ON comments;
DROP TRIGGER IF EXISTS situation_stats_reaction_written ON reactions;
DROP TRIGGER IF EXISTS situation_stats_reaction_changed ON reactions;
DROP TRIGGER IF EXISTS situation_stats_reactions_truncated ON reactions;
DROP FUNCTION IF EXISTS situation_stats_comment();
DROP FUNCTION IF EXISTS situation_stats_reaction();
DROP FUNCTION IF EXISTS situation_stats_truncated();
DROP FUNCTION IF EXISTS situation_stats_add(integer, integer, integer, integer, integer);
DROP TABLE IF EXISTS situation_stats;
"""


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _postgres():
        op.execute(_UPGRADE)


def downgrade() -> None:
    if _postgres():
        op.execute(_DOWNGRADE)
