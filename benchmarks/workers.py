"""N processes of the backend behind one listening socket: `python -m benchmarks.workers N
HOST PORT` (the "two workers" of the benchmark; settings from the environment).

The parent binds the socket and hands it to each child, which serves it with the same
uvicorn knobs as `python -m eq_backend run`; the kernel spreads connections between them.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from types import FrameType


def _child(fd: int) -> None:
    import uvicorn
    from eq_backend.app import create_app
    from eq_backend.settings import load_settings

    config = uvicorn.Config(
        create_app(load_settings()),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
    )
    # The inherited socket as what it is (TCP). uvicorn's own `fd=` takes any descriptor
    # for a UNIX socket, and then nothing sets TCP_NODELAY on the connections: every
    # response would wait for the client's delayed ACK.
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd)])


def _parent(count: int, host: str, port: int) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    fd = sock.fileno()
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.workers", "--child", str(fd)], pass_fds=[fd]
        )
        for _ in range(count)
    ]

    def stop(_signum: int, _frame: FrameType | None) -> None:
        for child in children:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return max(child.wait() for child in children)


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        _child(int(sys.argv[2]))
    else:
        raise SystemExit(_parent(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
