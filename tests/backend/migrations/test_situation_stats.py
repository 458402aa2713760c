"""`situation_stats` (migration a8c4e2f6d1b3) holds exactly what counting would give,
whoever writes and however: the old service's rows at upgrade, inserts, upserts, moves,
deletes, a situation's cascade, TRUNCATE, and concurrent writers. Real PostgreSQL."""

from __future__ import annotations

import threading

import psycopg
from eq_backend.migrations.runner import upgrade_to
from eq_cluster.services import PostgresServer

# Per situation: the kept counts, then the counted ones, in the same order.
KEPT_AND_COUNTED = """
SELECT s.id,
       coalesce(st.comments_count, 0), coalesce(st.reactions_count, 0),
       coalesce(st.upvotes_count, 0), coalesce(st.downvotes_count, 0),
       (SELECT count(*) FROM comments c WHERE c.situation_id = s.id),
       (SELECT count(*) FROM reactions r WHERE r.situation_id = s.id),
       (SELECT count(*) FROM reactions r WHERE r.situation_id = s.id
            AND r.reaction_type = 'upvote'),
       (SELECT count(*) FROM reactions r WHERE r.situation_id = s.id
            AND r.reaction_type = 'downvote')
FROM situations s LEFT JOIN situation_stats st ON st.situation_id = s.id
ORDER BY s.id
"""


def assert_kept_as_counted(conn: psycopg.Connection) -> list[tuple[int, ...]]:
    """Every situation's kept counts equal its counted ones; returns (id, 4 counts) rows."""
    rows = conn.execute(KEPT_AND_COUNTED).fetchall()
    for row in rows:
        assert row[1:5] == row[5:9], f"situation {row[0]}: kept {row[1:5]}, counted {row[5:9]}"
    return [tuple(row[:5]) for row in rows]


def _situation(conn: psycopg.Connection) -> int:
    return int(
        conn.execute(
            "INSERT INTO situations (context, question) VALUES ('c', 'q') RETURNING id"
        ).fetchone()[0]
    )


def _users(conn: psycopg.Connection, count: int) -> list[int]:
    return [
        int(
            conn.execute(
                "INSERT INTO users (google_id, email, name) VALUES (%s, %s, 'U') RETURNING id",
                (f"g{n}", f"u{n}@example.com"),
            ).fetchone()[0]
        )
        for n in range(count)
    ]


def test_the_upgrade_counts_what_the_old_service_wrote(
    old_database: tuple[str, psycopg.Connection],
) -> None:
    url, conn = old_database
    first, second, empty = _situation(conn), _situation(conn), _situation(conn)
    u1, u2, u3 = _users(conn, 3)
    conn.execute(
        "INSERT INTO comments (situation_id, user_id, content) VALUES "
        "(%(a)s, %(u)s, 'x'), (%(a)s, %(u)s, 'y'), (%(b)s, %(u)s, 'z')",
        {"a": first, "b": second, "u": u1},
    )
    # The old service let a user react twice; the upgrade keeps the newest of the two.
    conn.execute(
        "INSERT INTO reactions (situation_id, user_id, reaction_type, created_at) VALUES "
        "(%(a)s, %(u1)s, 'upvote', now() - interval '1 day'), (%(a)s, %(u1)s, 'downvote', now()),"
        "(%(a)s, %(u2)s, 'upvote', now()), (%(b)s, %(u3)s, 'heart', now())",
        {"a": first, "b": second, "u1": u1, "u2": u2, "u3": u3},
    )

    upgrade_to(url, "head")

    assert assert_kept_as_counted(conn) == [
        (first, 2, 2, 1, 1),
        (second, 1, 1, 0, 0),
        (empty, 0, 0, 0, 0),
    ]


def test_every_kind_of_write_keeps_the_counts_exact(
    old_database: tuple[str, psycopg.Connection],
) -> None:
    url, conn = old_database
    upgrade_to(url, "head")
    a, b, c = _situation(conn), _situation(conn), _situation(conn)
    users = _users(conn, 4)

    for user, kind in zip(users, ("downvote", "upvote", "downvote", "upvote"), strict=True):
        conn.execute(
            "INSERT INTO reactions (situation_id, user_id, reaction_type) VALUES (%s, %s, %s)",
            (a, user, kind),
        )
    conn.execute(
        "INSERT INTO comments (situation_id, user_id, content) "
        "SELECT s, %s, 'c' FROM unnest(%s::int[]) AS s, generate_series(1, 3)",
        (users[0], [a, b]),
    )
    assert assert_kept_as_counted(conn)[0] == (a, 3, 4, 2, 2)

    # The app's upsert: a changed type moves one count; the same type changes nothing.
    upsert = (
        "INSERT INTO reactions (situation_id, user_id, reaction_type) VALUES (%s, %s, %s) "
        "ON CONFLICT (situation_id, user_id) DO UPDATE SET reaction_type = EXCLUDED.reaction_type"
    )
    conn.execute(upsert, (a, users[1], "upvote"))
    conn.execute(upsert, (a, users[2], "upvote"))
    conn.execute(upsert, (b, users[3], "heart"))
    assert assert_kept_as_counted(conn)[:2] == [(a, 3, 4, 3, 1), (b, 3, 1, 0, 0)]

    # Rows moved to another situation, rows deleted.
    conn.execute("UPDATE comments SET situation_id = %s WHERE situation_id = %s", (c, b))
    conn.execute(
        "UPDATE reactions SET situation_id = %s WHERE situation_id = %s AND user_id = %s",
        (c, a, users[0]),
    )
    conn.execute("DELETE FROM reactions WHERE situation_id = %s AND user_id = %s", (a, users[1]))
    conn.execute("DELETE FROM comments WHERE id = (SELECT min(id) FROM comments)")
    assert assert_kept_as_counted(conn) == [
        (a, 2, 2, 2, 0),
        (b, 0, 1, 0, 0),
        (c, 3, 1, 0, 1),
    ]

    # A situation's cascade takes its comments, reactions and stats row along.
    conn.execute("DELETE FROM situations WHERE id = %s", (c,))
    assert conn.execute(
        "SELECT count(*) FROM situation_stats WHERE situation_id = %s", (c,)
    ).fetchone() == (0,)
    assert assert_kept_as_counted(conn) == [(a, 2, 2, 2, 0), (b, 0, 1, 0, 0)]

    conn.execute("TRUNCATE reactions")
    assert assert_kept_as_counted(conn) == [(a, 2, 0, 0, 0), (b, 0, 0, 0, 0)]
    conn.execute("TRUNCATE comments")
    assert assert_kept_as_counted(conn) == [(a, 0, 0, 0, 0), (b, 0, 0, 0, 0)]
    conn.execute("TRUNCATE situations, comments, reactions, answers RESTART IDENTITY CASCADE")
    assert conn.execute("SELECT count(*) FROM situation_stats").fetchone() == (0,)


def test_concurrent_writers_on_one_situation_lose_no_count(
    old_database: tuple[str, psycopg.Connection], pg: PostgresServer
) -> None:
    url, conn = old_database
    upgrade_to(url, "head")
    situation = _situation(conn)
    users = _users(conn, 8)
    errors: list[BaseException] = []

    def write(user: int) -> None:
        try:
            with pg.connect(conn.info.dbname) as own:
                for n in range(20):
                    own.execute(
                        "INSERT INTO comments (situation_id, user_id, content) "
                        "VALUES (%s, %s, 'c')",
                        (situation, user),
                    )
                    kind = "upvote" if n % 2 else "downvote"
                    own.execute(
                        "INSERT INTO reactions (situation_id, user_id, reaction_type) "
                        "VALUES (%s, %s, %s) ON CONFLICT (situation_id, user_id) "
                        "DO UPDATE SET reaction_type = EXCLUDED.reaction_type",
                        (situation, user, kind),
                    )
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # 8 writers x 20 comments; each writer's last reaction (n = 19) is an upvote.
    assert assert_kept_as_counted(conn) == [(situation, 160, 8, 8, 0)]
