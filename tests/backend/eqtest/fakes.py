"""Local stand-ins for Google's OpenID endpoints and an OpenAI-compatible API, over real HTTP.

Both run a stdlib `ThreadingHTTPServer` in a daemon thread on 127.0.0.1. Tests steer them
through plain attributes (`mode`, `next_user`) and read what they received (`requests`).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from eq_cluster.services import free_port


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _FakeHTTP:
    """Base: a server in a thread that hands every request (as a dict) to `handle`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _dispatch(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                record = {
                    "method": method,
                    "path": parts.path,
                    "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                    "headers": dict(self.headers.items()),
                    "body": body,
                }
                owner.requests.append(record)
                status, headers, payload = owner.handle(record)
                if status == 0:  # hang up without an answer
                    self.close_connection = True
                    return
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

        self._httpd = _Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, req: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _json(status: int, obj: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(obj).encode()


@dataclass
class OidcUser:
    sub: str
    email: str
    name: str
    picture: str = "https://example.test/pic.png"


@dataclass
class _Grant:
    user: OidcUser
    nonce: str | None
    redirect_uri: str | None
    client_id: str | None


class FakeOidcProvider(_FakeHTTP):
    """authorize → 302 back with a code; token exchanges a code once; userinfo by bearer.

    A code that was never issued (or is used twice) gets 401 from the token endpoint,
    like Google's `invalid_grant`. The id_token is HS256-signed with the client secret.
    """

    client_id = "test-client-id"
    client_secret = "test-client-secret"

    def __init__(self) -> None:
        self.next_user = OidcUser("sub-1", "first@example.test", "First User")
        self.refresh_token: str | None = "google-refresh-token-1"
        self._codes: dict[str, _Grant] = {}
        self._tokens: dict[str, OidcUser] = {}
        self.userinfo_status = 200
        # One of: None, token_500, token_garbage, no_id_token, wrong_nonce, wrong_aud,
        # no_access_token, userinfo_garbage, sub_mismatch, no_email
        self.fault: str | None = None
        super().__init__()

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def userinfo_url(self) -> str:
        return f"{self.base_url}/userinfo"

    def issue_code(self, user: OidcUser, nonce: str | None = None) -> str:
        code = "code-" + secrets.token_urlsafe(8)
        self._codes[code] = _Grant(user, nonce, None, self.client_id)
        return code

    def handle(self, req: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        path, q = req["path"], req["query"]
        if path == "/authorize":
            code = "code-" + secrets.token_urlsafe(8)
            self._codes[code] = _Grant(
                self.next_user, q.get("nonce"), q.get("redirect_uri"), q.get("client_id")
            )
            sep = "&" if "?" in q["redirect_uri"] else "?"
            location = q["redirect_uri"] + sep + urlencode({"code": code, "state": q["state"]})
            return 302, {"Location": location}, b""
        if path == "/token":
            form = {k: v[0] for k, v in parse_qs(req["body"].decode()).items()}
            grant = self._codes.pop(form.get("code", ""), None)
            if grant is None:
                return _json(400, {"error": "invalid_grant"})
            if self.fault == "token_500":
                return _json(503, {"error": "backend_error"})
            if self.fault == "token_garbage":
                return 200, {"Content-Type": "application/json"}, b"<html>not json</html>"
            now = int(time.time())
            claims = {
                "iss": self.base_url,
                "aud": self.client_id,
                "sub": grant.user.sub,
                "email": grant.user.email,
                "email_verified": True,
                "name": grant.user.name,
                "picture": grant.user.picture,
                "iat": now,
                "exp": now + 3600,
            }
            if grant.nonce:
                claims["nonce"] = grant.nonce
            if self.fault == "wrong_nonce":
                claims["nonce"] = "another-nonce"
            if self.fault == "wrong_aud":
                claims["aud"] = "someone-else"
            access = "at-" + secrets.token_urlsafe(8)
            self._tokens[access] = grant.user
            out: dict[str, Any] = {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 3599,
                "scope": "openid email profile",
                "id_token": jwt.encode(claims, self.client_secret, algorithm="HS256"),
            }
            if self.refresh_token:
                out["refresh_token"] = self.refresh_token
            if self.fault == "no_id_token":
                del out["id_token"]
            if self.fault == "no_access_token":
                del out["access_token"]
            return _json(200, out)
        if path == "/userinfo":
            token = req["headers"].get("Authorization", "").removeprefix("Bearer ")
            user = self._tokens.get(token)
            if user is None:
                return _json(401, {"error": "invalid_token"})
            if self.userinfo_status != 200:
                return _json(self.userinfo_status, {"error": "boom"})
            if self.fault == "userinfo_garbage":
                return _json(200, ["not", "an", "object"])
            info = {
                "sub": user.sub,
                "email": user.email,
                "email_verified": True,
                "name": user.name,
                "picture": user.picture,
            }
            if self.fault == "sub_mismatch":
                info["sub"] = "somebody-else"
            return _json(200, info)
        return _json(404, {"error": "not found"})


PILLARS = ("self_awareness", "empathy", "self_regulation", "communication", "decision_making")


def analysis_reply(score: int = 7) -> dict[str, Any]:
    return {
        "scores": {p: score for p in PILLARS},
        "reasoning": {p: f"reason for {p}" for p in PILLARS},
    }


@dataclass
class LlmBehaviour:
    mode: str = "ok"  # ok | extra_text | garbage | error500 | timeout | bad_shape | hangup
    delay: float = 0.0
    reply: dict[str, Any] = field(default_factory=analysis_reply)


class FakeLlm(_FakeHTTP):
    """POST /v1/chat/completions (and /chat/completions) answering per `behaviour.mode`."""

    def __init__(self) -> None:
        self.behaviour = LlmBehaviour()
        self.release = threading.Event()
        super().__init__()

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1"

    def reset(self) -> None:
        self.behaviour = LlmBehaviour()
        self.requests.clear()
        self.release.set()
        self.release = threading.Event()

    def _completion(self, content: str) -> tuple[int, dict[str, str], bytes]:
        return _json(
            200,
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "test-model",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )

    def handle(self, req: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if not req["path"].endswith("/chat/completions"):
            return _json(404, {"error": {"message": "not found"}})
        b = self.behaviour
        if b.mode == "timeout":
            self.release.wait(b.delay or 60)
        elif b.delay:
            time.sleep(b.delay)
        reply = json.dumps(b.reply, ensure_ascii=False)
        match b.mode:
            case "ok" | "timeout":
                return self._completion(reply)
            case "extra_text":
                return self._completion(f"Sure! Here is the analysis:\n```json\n{reply}\n```\nBye.")
            case "garbage":
                return self._completion("I cannot answer that {not json at all")
            case "bad_shape":
                return self._completion(json.dumps({"scores": "high", "reasoning": 3}))
            case "error500":
                return _json(500, {"error": {"message": "internal error"}})
            case "hangup":
                return 0, {}, b""
            case "not_json_body":
                return 200, {"Content-Type": "application/json"}, b"<html>oops</html>"
        raise AssertionError(f"unknown LLM mode {b.mode}")


class HangingTcpServer:
    """Accepts TCP connections and never says a word: a database that hangs."""

    def __init__(self) -> None:
        import socket

        self.port = free_port()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(64)
        self._conns: list[Any] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)

    def close(self) -> None:
        self._stop = True
        self._sock.close()
        for c in self._conns:
            c.close()
