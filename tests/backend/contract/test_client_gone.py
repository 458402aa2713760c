"""A client that hangs up before its request body arrives is counted as 499 (nginx's
"client closed request"), never as a server error nor logged as one, and writes nothing.
Served by uvicorn on a real socket, which is where a hang-up happens."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
import pytest
from eqtest.api import create_user
from eqtest.app import running, until


async def test_a_client_gone_mid_body_is_499_and_no_server_error(
    app_env: dict[str, str], db: psycopg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    user = create_user(db)
    situation = db.execute(
        "INSERT INTO situations (context, question) VALUES ('c', 'q') RETURNING id"
    ).fetchone()[0]

    def posts_counted(app: Any) -> list[str]:
        """The request counter's samples of POSTs to the comments route."""
        text = app.state.ctx.metrics.render()[0].decode()
        return [
            line
            for line in text.splitlines()
            if line.startswith("http_requests_total{")
            and 'method="POST"' in line
            and "/comments" in line
        ]

    async with running(app_env) as (app, api):
        port = api.client.base_url.port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST /api/v1/situations/{situation}/comments HTTP/1.1\r\nHost: test\r\n"
            f"Cookie: access_token={user.token}\r\nContent-Type: application/json\r\n"
            'Content-Length: 100\r\n\r\n{"content": "half a bo'.encode()
        )
        await writer.drain()
        await asyncio.sleep(0.3)  # the handler now waits for the rest of the body
        writer.close()
        await until(lambda: posts_counted(app), seconds=5)
        assert await reader.read() == b""  # nothing was answered on the dead connection

        counted = posts_counted(app)

    assert len(counted) == 1, counted
    assert 'status="499"' in counted[0], counted
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert db.execute(
        "SELECT count(*) FROM comments WHERE situation_id = %s", (situation,)
    ).fetchone() == (0,)
