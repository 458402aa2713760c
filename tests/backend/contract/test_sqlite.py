"""The embedded default: SQLite, no Redis, migrated and seeded by the CLI; `serve` end to end."""

import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from eq_cluster.services import free_port, wait_for_port
from eqtest.api import Api, err, mint_token, ok
from eqtest.cli import cli_env, run_cli


@pytest.fixture(scope="module")
def sqlite_env(tmp_path_factory, base_env) -> dict[str, str]:
    path = tmp_path_factory.mktemp("sqlite") / "eq.db"
    env = {
        **base_env,
        "DATABASE_URL": f"sqlite:///{path}",
        "ENVIRONMENT": "dev",
        "ADMIN_EMAILS": "lite@example.test",  # lite_user below writes a topic
    }
    env.pop("REDIS_URL", None)
    here = Path(__file__).parent
    run_cli("migrate", env=env, cwd=here)
    run_cli("seed", env=env, cwd=here)
    run_cli("seed", env=env, cwd=here)  # seeding twice is harmless
    run_cli("db-check", env=env, cwd=here)
    return {**env, "_path": str(path)}


@pytest.fixture(scope="module")
async def lite(sqlite_env, app_client_factory) -> AsyncIterator[Api]:
    async with app_client_factory(sqlite_env) as client:
        yield client


@pytest.fixture(scope="module")
def lite_user(sqlite_env):
    conn = sqlite3.connect(sqlite_env["_path"])
    with conn:
        cur = conn.execute(
            "INSERT INTO users (google_id, email, name, picture) VALUES (?, ?, ?, ?)",
            ("g-lite", "lite@example.test", "Lite User", None),
        )
    conn.close()
    return cur.lastrowid, mint_token("lite@example.test")


async def test_seed_topics_and_one_situation_each(lite: Api) -> None:
    topics = ok(await lite.get("/api/v1/topics"), "Topics retrieved successfully")
    assert [t["name"] for t in topics] == ["Tình yêu", "Công sở", "Gia đình", "Bạn bè"]
    for t in topics:
        sits = ok(
            await lite.get(f"/api/v1/topics/{t['id']}/situations"),
            "Situations retrieved successfully",
        )
        assert len(sits) == 1


async def test_sqlite_health_db(lite: Api) -> None:
    assert ok(await lite.get("/health/db"), "Database healthy") == {"status": "connected"}


async def test_sqlite_write_paths(lite: Api, lite_user, sqlite_env) -> None:
    _uid, token = lite_user
    auth = {"Cookie": f"access_token={token}"}
    created = ok(
        await lite.post(
            "/api/v1/situations/contribute",
            json={"topic_id": None, "context": "c", "question": "q", "image_url": ""},
            headers=auth,
        ),
        "Situation contributed successfully",
    )
    sid = created["id"]
    ok(
        await lite.post(
            f"/api/v1/situations/{sid}/reactions", json={"reaction_type": "upvote"}, headers=auth
        ),
        "Reaction created successfully",
    )
    ok(
        await lite.post(
            f"/api/v1/situations/{sid}/reactions", json={"reaction_type": "downvote"}, headers=auth
        ),
        "Reaction created successfully",
    )
    ok(
        await lite.post(
            f"/api/v1/situations/{sid}/comments", json={"content": "vui"}, headers=auth
        ),
        "Comment created successfully",
    )
    feed = ok(
        await lite.get("/api/v1/situations/feed", headers=auth),
        "Situations feed retrieved successfully",
    )
    top = feed["items"][0]
    assert top["id"] == sid
    assert top["stats"] == {
        "comments_count": 1,
        "reactions_count": 1,
        "upvotes_count": 0,
        "downvotes_count": 1,
    }
    assert top["user_reaction"] == "downvote"
    contributed = ok(
        await lite.get("/api/v1/situations/contributed", headers=auth),
        "Contributed situations retrieved successfully",
    )
    assert [c["id"] for c in contributed] == [sid]
    err(await lite.post("/api/v1/topics/", json={"name": "Tình yêu"}, headers=auth), 409)
    err(
        await lite.post(
            "/api/v1/situations/",
            json={"topic_id": 424242, "context": "c", "question": "q"},
            headers=auth,
        ),
        422,
    )
    assert (
        ok(
            await lite.delete(f"/api/v1/situations/{sid}", headers=auth),
            "Situation deleted successfully",
        )
        is None
    )
    conn = sqlite3.connect(sqlite_env["_path"])
    (n,) = conn.execute("SELECT count(*) FROM reactions WHERE situation_id = ?", (sid,)).fetchone()
    conn.close()
    assert n == 0


def test_serve_migrates_seeds_and_serves(tmp_path, base_env) -> None:
    """`python -m eq_backend serve` on a fresh SQLite file: the newcomer's first command."""
    port = free_port()
    env = {**base_env, "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "ENVIRONMENT": "dev"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "eq_backend", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=cli_env(env),
        cwd=str(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert health.json()["message"] == "Healthy"
        topics = httpx.get(f"http://127.0.0.1:{port}/api/v1/topics", timeout=5).json()
        assert len(topics["data"]) == 4
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly
    assert proc.returncode in (0, -signal.SIGTERM), out.decode(errors="replace")[-2000:]
    assert b"Traceback" not in out, out.decode(errors="replace")[-2000:]
