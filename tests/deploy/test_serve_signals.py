"""`inv serve` passes SIGTERM and SIGINT to the server and ends when it ends (issue 12,
finding 6: the server kept serving, re-parented, after invoke died)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60  # migrate + seed + start on a busy machine
STOP_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_inv_serve_stops_the_server_it_started(tmp_path: Path, signum: signal.Signals) -> None:
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "ENVIRONMENT": "dev",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "LOG_LEVEL": "WARNING",
    }
    inv = subprocess.Popen(
        [sys.executable, "-m", "invoke", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server: list[int] = []
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _accepts(port):
            assert inv.poll() is None, f"inv serve ended early: {inv.stderr.read().decode()[-500:]}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, f"nothing listens on {port} after {START_SECONDS} s"
            time.sleep(0.2)
        server = _children(inv.pid)
        assert server, "inv serve started no child process"
        inv.send_signal(signum)
        code = inv.wait(STOP_SECONDS)
        # uvicorn stops gracefully, then re-raises the signal: 128 + its number, as a shell
        # reports it.
        assert code in (0, 128 + signum), (
            f"inv serve exited {code}: {inv.stderr.read().decode()[-500:]}"
        )  # type: ignore[union-attr]
        assert not _accepts(port), "the server still listens after inv serve ended"
        assert not any(_alive(pid) for pid in server), "the server outlived inv serve"
    finally:
        for pid in [inv.pid, *server]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        inv.wait(10)
