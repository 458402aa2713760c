"""The ceiling: a raw ASGI callable returning a small JSON, on the backend's uvicorn config."""

import sys

BODY = b'{"success":true,"message":"Healthy","data":{"status":"ok"}}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    import uvicorn

    # Same knobs as `python -m eq_backend run` (eq_backend.cli.run_server), one worker.
    uvicorn.run(
        app,
        host=sys.argv[1],
        port=int(sys.argv[2]),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
    )
