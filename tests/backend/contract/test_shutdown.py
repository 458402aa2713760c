"""Graceful shutdown: SIGTERM during an in-flight request lets it finish (rolling updates)."""

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from eq_cluster.services import free_port, wait_for_port
from eqtest.api import mint_token
from eqtest.cli import cli_env, run_cli
from eqtest.fakes import FakeLlm


def start_server(env: dict[str, str], cwd: Path) -> tuple[int, subprocess.Popen[bytes]]:
    """`python -m eq_backend run` (what the container runs) on a free loopback port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "eq_backend", "run", "--host", "127.0.0.1", "--port", str(port)],
        env=cli_env(env),
        cwd=str(cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return port, proc


def test_sigterm_lets_the_in_flight_request_finish(tmp_path: Path, base_env, llm_reset: FakeLlm):
    env = {
        **base_env,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shutdown.db'}",
        "ENVIRONMENT": "dev",
    }
    run_cli("migrate", env=env, cwd=tmp_path)
    run_cli("seed", env=env, cwd=tmp_path)
    conn = sqlite3.connect(tmp_path / "shutdown.db")
    with conn:
        conn.execute(
            "INSERT INTO users (google_id, email, name) VALUES ('g-sd', 'sd@example.test', 'SD')"
        )
        (sid,) = conn.execute("SELECT id FROM situations ORDER BY id LIMIT 1").fetchone()
    conn.close()
    token = mint_token("sd@example.test")
    llm_reset.behaviour.delay = 1.5  # the request is in flight while SIGTERM arrives

    port, proc = start_server(env, tmp_path)
    result: dict[str, object] = {}

    def in_flight() -> None:
        try:
            resp = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/analysis/analyze",
                json={"situation_id": sid, "answer_text": "I stay calm"},
                headers={"Cookie": f"access_token={token}"},
                timeout=15,
            )
            result["status"] = resp.status_code
            result["body"] = resp.json()
        except httpx.HTTPError as exc:
            result["error"] = repr(exc)

    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        worker = threading.Thread(target=in_flight)
        worker.start()
        deadline = time.monotonic() + 10
        while not llm_reset.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert llm_reset.requests, "the request never reached the LLM"
        proc.send_signal(signal.SIGTERM)
        worker.join(20)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert result.get("status") == 200, (result, out.decode(errors="replace")[-2000:])
    assert result["body"]["message"] == "Answer analyzed successfully"
    assert proc.returncode in (0, -signal.SIGTERM), out.decode(errors="replace")[-2000:]
    # and it no longer accepts connections
    try:
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
        raise AssertionError("the server still answers after SIGTERM")
    except httpx.HTTPError:
        pass


def test_sigterm_drains_keep_alive_connections_before_stopping(tmp_path: Path, base_env) -> None:
    """Clients holding keep-alive connections (as browsers and proxies do) keep being answered
    for SHUTDOWN_DRAIN_SECONDS after SIGTERM, each answer closing its connection so the next
    request would open one to a pod that stays; no connection is reset under a client."""
    drain = 2.0
    env = {
        **base_env,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'drain.db'}",
        "ENVIRONMENT": "dev",
        "SHUTDOWN_DRAIN_SECONDS": str(drain),
    }
    run_cli("migrate", env=env, cwd=tmp_path)
    port, proc = start_server(env, tmp_path)
    # (monotonic start, status or None, the response's Connection header, error type)
    outcomes: list[tuple[float, int | None, str, str]] = []
    stop = threading.Event()

    def client(path: str) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    resp = http.get(path)
                    outcomes.append(
                        (started, resp.status_code, resp.headers.get("connection", ""), "")
                    )
                except httpx.HTTPError as exc:
                    outcomes.append((started, None, "", type(exc).__name__))
                    time.sleep(0.01)

    clients = [
        threading.Thread(target=client, args=(p,)) for p in ("/health", "/api/v1/topics/") * 2
    ]
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        for thread in clients:
            thread.start()
        time.sleep(1.0)
        sigterm_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=drain + 25)
        stopped_at = time.monotonic()
    finally:
        stop.set()
        for thread in clients:
            thread.join(10)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    log = out.decode(errors="replace")[-2000:]
    assert proc.returncode in (0, -signal.SIGTERM), log
    assert stopped_at - sigterm_at >= drain, "the server stopped before its drain ended"

    before = [o for o in outcomes if o[0] < sigterm_at]
    # Requests sent during the drain, less a margin for the moment the listener closes
    # (in a cluster, requests after that reach the other pods).
    draining = [o for o in outcomes if sigterm_at + 0.1 <= o[0] < sigterm_at + drain - 0.3]
    assert len(before) > 20, len(before)
    assert len(draining) > 20, len(draining)
    failed = [o for o in before + draining if o[1] != 200]
    assert not failed, failed[:5]
    assert all(o[2] == "close" for o in draining), [o for o in draining if o[2] != "close"][:5]
    assert not any(o[2] == "close" for o in before[:-8]), "closing before SIGTERM"
