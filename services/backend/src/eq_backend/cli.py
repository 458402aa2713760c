"""`python -m eq_backend serve|run|migrate|seed|db-check`.

Settings errors print one line and exit 2; a failed migration prints one line and exits 1;
`db-check` exits 3 when the database's revision is unknown to this build.

`migrate` (the deploy's migration Job) holds a PostgreSQL advisory lock while it works, and
prints what the deploy tool records: `alembic chain: {rev: [down, expand|contract]}`,
`alembic before: <rev>` and `alembic head: <rev>`. `migrate --downgrade REV` goes down.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence

from eq_backend.settings import Settings, SettingsError, load_settings, redact_url

EXIT_SETTINGS = 2
EXIT_UNKNOWN_REVISION = 3

logger = logging.getLogger("eq_backend.cli")


class CommandFailed(Exception):
    """A command failed in an expected way; the message is one line for a person."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def migrate(settings: Settings) -> str:
    """Upgrade the database to head; returns the head revision."""
    return migrate_report(settings)[1]


def migrate_report(settings: Settings, downgrade: str | None = None) -> tuple[str, str]:
    """Upgrade to head (or downgrade to `downgrade`) under the migration lock; returns
    (revision before, revision after)."""
    from eq_backend.migrations.runner import (
        database_revisions,
        downgrade_to,
        script_head,
        upgrade_to,
    )

    try:
        if downgrade:
            before = downgrade_to(settings.database_url, downgrade)
            after = ",".join(database_revisions(settings.database_url))
        else:
            before = upgrade_to(settings.database_url, "head")
            after = script_head()
    except Exception as exc:
        raise CommandFailed(
            f"migration failed on {redact_url(settings.database_url)}: {_one_line(exc)}"
        ) from None
    return ",".join(before) or "none", after or "none"


def seed_database(settings: Settings) -> int:
    from eq_backend.db.engine import Database, create_engine
    from eq_backend.seed import seed

    async def _run() -> int:
        db = Database(create_engine(settings))
        try:
            return await seed(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(_run())
    except Exception as exc:
        raise CommandFailed(f"seeding failed: {_one_line(exc)}") from None


def db_check(settings: Settings) -> int:
    """Print the database revision and this build's head; 0 if known, 3 if not."""
    from eq_backend.migrations.runner import database_revisions, known_revisions, script_head

    try:
        current = database_revisions(settings.database_url)
    except Exception as exc:
        raise CommandFailed(f"cannot read the database revision: {_one_line(exc)}") from None
    head = script_head()
    print(f"database revision: {', '.join(current) or 'none'}")
    print(f"build head: {head}")
    unknown = [rev for rev in current if rev not in known_revisions()]
    if unknown:
        print(f"unknown to this build: {', '.join(unknown)}")
        return EXIT_UNKNOWN_REVISION
    return 0


def run_server(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from eq_backend.app import create_app
    from eq_backend.server import DrainingServer

    app = create_app(settings)
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:  # pragma: no cover - Windows
        loop = "asyncio"
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=loop,
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        server_header=False,
    )
    DrainingServer(config, app.ctx).run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eq_backend", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("serve", "migrate to head, seed, then serve (the local default)"),
        ("run", "serve only; migrations run separately (what the container runs)"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
    p = sub.add_parser("migrate", help="alembic upgrade head (under an advisory lock)")
    p.add_argument("--downgrade", metavar="REV", help="alembic downgrade to REV instead")
    sub.add_parser("seed", help="insert the seed topics and situations (idempotent)")
    sub.add_parser("db-check", help="compare the database revision with this build's scripts")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    from eq_backend.observability import configure_logging

    configure_logging(settings.log_level, json_lines=not settings.is_dev)
    try:
        if args.command == "migrate":
            from eq_backend.migrations.runner import revision_chain

            print(f"alembic chain: {json.dumps(revision_chain(), separators=(',', ':'))}")
            before, after = migrate_report(settings, args.downgrade)
            print(f"alembic before: {before}")
            print(f"alembic head: {after}")
        elif args.command == "seed":
            print(f"seeded: {seed_database(settings)} rows inserted")
        elif args.command == "db-check":
            return db_check(settings)
        elif args.command == "serve":
            head = migrate(settings)
            inserted = seed_database(settings)
            logger.info("database ready", extra={"alembic_head": head, "seeded_rows": inserted})
            run_server(settings, args.host, args.port)
        elif args.command == "run":
            run_server(settings, args.host, args.port)
    except CommandFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
