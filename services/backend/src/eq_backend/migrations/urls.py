"""URL helpers shared by the Alembic environment and the CLI."""

from __future__ import annotations

from eq_backend.settings import normalize_database_url


def sync_database_url(url: str) -> str:
    """The synchronous form of a database URL: psycopg 3 stays, aiosqlite → sqlite3."""
    url = normalize_database_url(url)
    if url.startswith("sqlite+aiosqlite://"):
        return "sqlite://" + url[len("sqlite+aiosqlite://") :]
    return url
