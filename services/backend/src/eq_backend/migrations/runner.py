"""Run and inspect Alembic migrations from code (the CLI and tests use this)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import create_engine, pool

from eq_backend.migrations.urls import sync_database_url

SCRIPT_LOCATION = "eq_backend:migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config for this package's scripts and the given database."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["database_url"] = database_url
    return config


def script_head(database_url: str = "sqlite://") -> str:
    """The head revision of this build's migration scripts."""
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    """Every revision id this build's scripts know."""
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return {rev.revision for rev in scripts.walk_revisions()}


def database_revisions(database_url: str) -> tuple[str, ...]:
    """The revision(s) recorded in the database's alembic_version table (empty if none)."""
    engine = create_engine(sync_database_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return tuple(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def upgrade_to(database_url: str, revision: str = "head") -> None:
    """`alembic upgrade <revision>` against the given database."""
    command.upgrade(alembic_config(database_url), revision)


__all__ = [
    "CommandError",
    "alembic_config",
    "database_revisions",
    "known_revisions",
    "script_head",
    "upgrade_to",
]
