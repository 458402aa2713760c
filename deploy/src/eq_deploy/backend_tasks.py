"""Tasks that run the backend on this machine: `inv serve` and `inv bench`."""

import sys

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from eq_deploy.foreground import run_forwarding_signals


@task(
    help={
        "host": "interface to listen on (default 127.0.0.1)",
        "port": "port to listen on (default 8000)",
    }
)
def serve(c: Context, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the API locally: migrate, seed, then serve (SQLite and no Redis unless configured).
    SIGTERM and SIGINT reach the server; the task ends when the server does."""
    argv = [sys.executable, "-m", "eq_backend", "serve", "--host", host, "--port", str(port)]
    code = run_forwarding_signals(argv)
    if code:
        raise Exit(code=code)


@task
def bench(c: Context) -> None:
    """Benchmark the backend against PostgreSQL and Redis; record JSON and docs/benchmarks.md."""
    c.run(f"{sys.executable} -m benchmarks.backend", pty=False)
