"""A database of the module's own at the initial revision, as the old service left it."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from eq_backend.migrations.runner import upgrade_to
from eq_cluster.services import PostgresServer

INITIAL = "bb9ea76cc252"


@pytest.fixture
def old_database(
    pg: PostgresServer, request: pytest.FixtureRequest
) -> Iterator[tuple[str, psycopg.Connection]]:
    """(URL, autocommit connection) of a new database at INITIAL, named after the module."""
    name = "eq_" + request.module.__name__.rpartition(".")[2].removeprefix("test_")
    url = pg.create_database(name)
    upgrade_to(url, INITIAL)
    conn = pg.connect(name)
    yield url, conn
    conn.close()
    pg.drop_database(name)
