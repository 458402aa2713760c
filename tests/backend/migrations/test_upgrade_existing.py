"""An existing database at bb9ea76cc252, with data, upgrades in place to head and keeps it.

Runs against real PostgreSQL: the session's throwaway server (or EQ_TEST_DATABASE_URL),
from the `pg` fixture, which fails loudly when neither is available.
"""

from __future__ import annotations

import json

import psycopg
import pytest
from eq_backend.cli import main
from eq_backend.migrations.runner import database_revisions, script_head, upgrade_to

INITIAL = "bb9ea76cc252"


def _fill_like_the_old_service(conn: psycopg.Connection) -> dict[str, int]:
    """Rows the old service could have written, including its defects."""
    user = conn.execute(
        "INSERT INTO users (google_id, email, name) VALUES ('g1', 'old@example.com', 'Old') "
        "RETURNING id"
    ).fetchone()[0]
    topic = conn.execute("INSERT INTO topics (name) VALUES ('Công sở') RETURNING id").fetchone()[0]
    situation = conn.execute(
        "INSERT INTO situations (topic_id, user_id, context, question) "
        "VALUES (%s, %s, 'ctx', 'q?') RETURNING id",
        (topic, user),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO comments (situation_id, user_id, content, sentiment_score, sentiment_label) "
        "VALUES (%s, %s, 'vui', 100, 'positive')",
        (situation, user),
    )
    # Duplicated reactions (the old service did not enforce one per user): the newest wins.
    conn.execute(
        "INSERT INTO reactions (situation_id, user_id, reaction_type, created_at) VALUES "
        "(%s, %s, 'upvote', now() - interval '2 days'), (%s, %s, 'downvote', now())",
        (situation, user, situation, user),
    )
    # Scores stored as JSON strings inside JSON, as the old service did.
    conn.execute(
        "INSERT INTO answers (situation_id, user_id, answer_text, scores, reasoning) "
        "VALUES (%s, NULL, 'answer', %s, %s)",
        (situation, json.dumps(json.dumps({"empathy": 7})), json.dumps(json.dumps({}))),
    )
    return {"user": user, "topic": topic, "situation": situation}


def test_upgrade_keeps_data_and_applies_the_fixes(
    old_database: tuple[str, psycopg.Connection],
) -> None:
    url, conn = old_database
    ids = _fill_like_the_old_service(conn)

    upgrade_to(url, "head")

    assert database_revisions(url) == (script_head(),)
    assert conn.execute("SELECT email FROM users").fetchall() == [("old@example.com",)]
    assert conn.execute("SELECT name FROM topics").fetchall() == [("Công sở",)]
    assert conn.execute("SELECT count(*) FROM comments").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM answers").fetchone() == (1,)
    assert conn.execute("SELECT reaction_type FROM reactions").fetchall() == [("downvote",)]

    # One reaction per user and situation is now the database's rule.
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO reactions (situation_id, user_id, reaction_type) "
            "VALUES (%s, %s, 'upvote')",
            (ids["situation"], ids["user"]),
        )
    # Deleting a situation takes its children along; deleting a topic keeps its situations.
    other = conn.execute(
        "INSERT INTO situations (topic_id, context, question) VALUES (%s, 'c', 'q') RETURNING id",
        (ids["topic"],),
    ).fetchone()[0]
    conn.execute("DELETE FROM situations WHERE id = %s", (ids["situation"],))
    assert conn.execute("SELECT count(*) FROM comments").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM reactions").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM answers").fetchone() == (0,)
    conn.execute("DELETE FROM topics WHERE id = %s", (ids["topic"],))
    assert conn.execute("SELECT topic_id FROM situations WHERE id = %s", (other,)).fetchone() == (
        None,
    )


def test_upgrade_is_idempotent_and_db_check_knows_the_revision(
    old_database: tuple[str, psycopg.Connection],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, conn = old_database
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ENVIRONMENT", "dev")
    assert main(["db-check"]) == 0
    assert f"database revision: {INITIAL}" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"alembic head: {script_head()}"
    conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    assert main(["db-check"]) == 3
    assert "unknown to this build: ffffffffffff" in capsys.readouterr().out


def test_downgrade_to_the_initial_revision_restores_the_old_schema(
    old_database: tuple[str, psycopg.Connection],
) -> None:
    """The fixes are reversible, so a rollback of the schema is possible too."""
    from alembic import command
    from eq_backend.migrations.runner import alembic_config

    url, conn = old_database
    upgrade_to(url, "head")
    command.downgrade(alembic_config(url), INITIAL)
    assert database_revisions(url) == (INITIAL,)
    conn.execute("INSERT INTO topics (name) VALUES ('t')")
