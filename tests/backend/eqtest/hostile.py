"""A local HTTP server that answers the way a broken or hostile upstream would.

It stands in for the LLM's chat-completions endpoint and Google's token endpoint in the
deadline tests: the app talks to it over real HTTP, so its client's timeouts, size cap and
parser are what is tested.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar


def completion(content: str) -> bytes:
    """An OpenAI chat-completions body whose first choice says `content`."""
    return json.dumps(
        {"choices": [{"message": {"role": "assistant", "content": content}}]}
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    server: HostileServer  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        self.server.answer(self)

    do_GET = do_POST


class HostileServer(ThreadingHTTPServer):
    """Answers every request per `mode`:

    - `trickle`: promises a body and sends one byte every `interval` seconds, forever;
    - `flood`: sends body bytes as fast as the client reads, forever;
    - `body`: sends `body` (set it) at once, as JSON.
    """

    daemon_threads = True
    MODES: ClassVar[tuple[str, ...]] = ("trickle", "flood", "body")

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "body"
        self.body = b"{}"
        self.interval = 0.5
        self.closing = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, handler: _Handler) -> None:
        try:
            if self.mode == "body":
                self._send_head(handler, len(self.body))
                handler.wfile.write(self.body)
            elif self.mode == "trickle":
                self._send_head(handler, None)  # read until the connection closes
                while not self.closing.wait(self.interval):
                    handler.wfile.write(b" ")
                    handler.wfile.flush()
            elif self.mode == "flood":
                self._send_head(handler, None)
                chunk = b" " * 65536
                while not self.closing.is_set():
                    handler.wfile.write(chunk)
            else:
                raise AssertionError(f"unknown mode {self.mode}")
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            pass  # the client gave up: what the app should do

    @staticmethod
    def _send_head(handler: _Handler, length: int | None) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if length is not None:
            handler.send_header("Content-Length", str(length))
        handler.end_headers()
        handler.wfile.flush()

    def close(self) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()
