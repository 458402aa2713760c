"""Alembic environment: runs migrations synchronously (psycopg 3 or sqlite3 driver).

The URL comes from, in order: `config.attributes["database_url"]` (set by the CLI),
`sqlalchemy.url` in the ini file, then DATABASE_URL from the environment or `.env`.

On PostgreSQL every run holds a session-level advisory lock, so two migrations (two deploys'
Jobs, a Job and `inv serve`) never run at once: the second waits, then finds the work done.
"""

from __future__ import annotations

import sys

from alembic import context
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection

from eq_backend.db.tables import metadata
from eq_backend.migrations.urls import sync_database_url
from eq_backend.settings import load_settings

config = context.config
# pg_advisory_lock's key for migrations: "eqmigr" in ASCII, fixed for every version.
MIGRATION_LOCK_KEY = 0x65716D696772


def _take_migration_lock(connection: Connection) -> None:
    """Hold the migration lock for this connection's session (released when it closes)."""
    if connection.dialect.name != "postgresql":
        return
    got = connection.exec_driver_sql(f"SELECT pg_try_advisory_lock({MIGRATION_LOCK_KEY})").scalar()
    if not got:
        print(
            "waiting for another migration to finish (PostgreSQL advisory lock)",
            file=sys.stderr,
            flush=True,
        )
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
    connection.commit()


def _database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        url = load_settings().database_url
    return sync_database_url(str(url))


def run_migrations_offline() -> None:
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = _database_url()
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # Batch mode recreates tables; foreign keys must not fire while it copies rows.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        _take_migration_lock(connection)
        # Read under the lock: what this run starts from, not what a waited-for run left.
        config.attributes["revisions_before"] = MigrationContext.configure(
            connection
        ).get_current_heads()
        connection.commit()
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
