"""Tasks that run the backend on this machine: `inv serve` and `inv bench`."""

import sys

from invoke.context import Context
from invoke.tasks import task


@task(
    help={
        "host": "interface to listen on (default 127.0.0.1)",
        "port": "port to listen on (default 8000)",
    }
)
def serve(c: Context, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the API locally: migrate, seed, then serve (SQLite and no Redis unless configured)."""
    c.run(f"{sys.executable} -m eq_backend serve --host {host} --port {port}", pty=False)


@task
def bench(c: Context) -> None:
    """Benchmark the backend against PostgreSQL and Redis; record JSON and docs/benchmarks.md."""
    c.run(f"{sys.executable} -m benchmarks.backend", pty=False)
