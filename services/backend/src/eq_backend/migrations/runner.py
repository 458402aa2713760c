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
SCHEMA_CHANGES = ("expand", "contract")


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


def revision_chain(scripts: ScriptDirectory | None = None) -> dict[str, list[str]]:
    """{revision: [down revision ("" for the first), "expand" | "contract"]} of this build's
    scripts: what a rollback needs to know whether older code runs on a newer schema.
    ValueError names a revision that does not declare `schema_change`."""
    if scripts is None:
        scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    chain: dict[str, list[str]] = {}
    for rev in scripts.walk_revisions():
        kind = getattr(rev.module, "schema_change", None)
        if kind not in SCHEMA_CHANGES:
            raise ValueError(
                f"migration {rev.revision} ({rev.path}): schema_change is {kind!r}; "
                "declare 'expand' or 'contract'"
            )
        down = rev.down_revision
        if isinstance(down, tuple | list):  # a merge: the chain follows its first parent
            down = down[0] if down else None
        chain[rev.revision] = [str(down or ""), str(kind)]
    return chain


def database_revisions(database_url: str) -> tuple[str, ...]:
    """The revision(s) recorded in the database's alembic_version table (empty if none)."""
    engine = create_engine(sync_database_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return tuple(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def upgrade_to(database_url: str, revision: str = "head") -> tuple[str, ...]:
    """`alembic upgrade <revision>` against the given database, under the migration lock
    (see env.py); returns the database's revisions before, read under that lock."""
    config = alembic_config(database_url)
    command.upgrade(config, revision)
    return tuple(config.attributes.get("revisions_before") or ())


def downgrade_to(database_url: str, revision: str) -> tuple[str, ...]:
    """`alembic downgrade <revision>`, under the migration lock; returns the revisions before."""
    config = alembic_config(database_url)
    command.downgrade(config, revision)
    return tuple(config.attributes.get("revisions_before") or ())


__all__ = [
    "CommandError",
    "alembic_config",
    "database_revisions",
    "downgrade_to",
    "known_revisions",
    "revision_chain",
    "script_head",
    "upgrade_to",
]
