"""What the deploy tool's rollback rule relies on: every revision says expand or contract,
`migrate` prints the chain and the revisions before and after, `migrate --downgrade` goes
down, and two migrations never run at once (PostgreSQL advisory lock). Real PostgreSQL."""

from __future__ import annotations

import ast
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from eq_backend.cli import main
from eq_backend.migrations import runner
from eq_backend.migrations.runner import database_revisions, revision_chain, script_head, upgrade_to
from eq_cluster.services import PostgresServer

VERSIONS = Path(runner.__file__).parent / "versions"
INITIAL = "bb9ea76cc252"
LOCK_KEY = 0x65716D696772  # env.py's MIGRATION_LOCK_KEY


def _declared(path: Path) -> object:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == "schema_change" for t in targets):
                return ast.literal_eval(node.value) if node.value else None
    return None


@pytest.mark.parametrize(
    "path", sorted(p for p in VERSIONS.glob("*.py") if p.name != "__init__.py"), ids=str
)
def test_every_revision_declares_expand_or_contract(path: Path) -> None:
    assert _declared(path) in ("expand", "contract"), (
        f"{path.name}: set schema_change to 'expand' (the previous release runs on the new "
        "schema) or 'contract' (it does not)"
    )


def test_the_chain_names_every_revision_with_its_kind() -> None:
    chain = revision_chain()
    assert chain[INITIAL] == ["", "expand"]
    rev, seen = script_head(), []
    while rev:
        seen.append(rev)
        rev = chain[rev][0]
    assert set(seen) == set(chain)


def test_a_revision_without_a_kind_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(runner.alembic_config("sqlite://"))
    head = scripts.get_revision(script_head())
    assert head is not None
    monkeypatch.delattr(head.module, "schema_change")
    with pytest.raises(ValueError, match=f"migration {script_head()} .*declare 'expand'"):
        revision_chain(scripts)


@pytest.fixture
def database(pg: PostgresServer) -> Iterator[str]:
    name = "eq_release_rules"
    url = pg.create_database(name)
    yield url
    pg.drop_database(name)


def test_migrate_prints_chain_before_and_head_and_downgrades(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database)
    monkeypatch.setenv("ENVIRONMENT", "dev")
    upgrade_to(database, INITIAL)
    assert main(["migrate"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    chain = json.loads(next(x for x in lines if x.startswith("alembic chain: "))[15:])
    assert chain == revision_chain()
    assert f"alembic before: {INITIAL}" in lines
    assert lines[-1] == f"alembic head: {script_head()}"

    assert main(["migrate", "--downgrade", INITIAL]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert f"alembic before: {script_head()}" in lines
    assert lines[-1] == f"alembic head: {INITIAL}"
    assert database_revisions(database) == (INITIAL,)


def test_a_second_migration_waits_for_the_first(
    pg: PostgresServer, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lock another migration holds (here: held by hand) makes `upgrade` wait."""
    holder = pg.connect("eq_release_rules")
    holder.autocommit = True
    holder.execute(f"SELECT pg_advisory_lock({LOCK_KEY})")
    done = threading.Event()
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            upgrade_to(database, "head")
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=migrate)
    thread.start()
    try:
        assert not done.wait(2), "the migration ran while another held the lock"
        assert database_revisions(database) == ()
    finally:
        holder.execute(f"SELECT pg_advisory_unlock({LOCK_KEY})")
        holder.close()
    assert done.wait(60)
    thread.join()
    assert not errors, errors
    assert database_revisions(database) == (script_head(),)
    assert "waiting for another migration to finish" in capsys.readouterr().err


def test_the_lock_is_free_after_a_migration(pg: PostgresServer, database: str) -> None:
    upgrade_to(database, "head")
    with psycopg.connect(database.replace("postgresql+psycopg://", "postgresql://")) as conn:
        got = conn.execute(f"SELECT pg_try_advisory_lock({LOCK_KEY})").fetchone()
        assert got == (True,)
    started = time.monotonic()
    upgrade_to(database, "head")
    assert time.monotonic() - started < 10
