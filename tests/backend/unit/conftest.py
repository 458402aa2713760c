"""Unit tests of the backend: the app on a throwaway SQLite file, no Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from eq_backend.app import create_app
from eq_backend.db.engine import Database, create_engine
from eq_backend.db.tables import users
from eq_backend.migrations.runner import upgrade_to
from eq_backend.security import create_access_token
from eq_backend.seed import seed
from eq_backend.settings import Settings
from litestar.testing import AsyncTestClient
from sqlalchemy import insert


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"sqlite+aiosqlite:///{tmp_path / 'unit.db'}"
    upgrade_to(url, "head")
    return Settings(
        database_url=url,
        log_level="WARNING",
        openai_base_url="http://127.0.0.1:9",
        admin_emails=("ann@example.com",),
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    db = Database(create_engine(settings))
    await seed(db)
    async with db.begin() as conn:
        await conn.execute(
            insert(users),
            [
                {"email": "ann@example.com", "name": "Ann", "google_id": "g-ann"},
                {"email": "bob@example.com", "name": "Bob", "google_id": "g-bob"},
            ],
        )
    await db.dispose()
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def ann(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_access_token(settings, 'ann@example.com')}"}


@pytest.fixture
def bob(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_access_token(settings, 'bob@example.com')}"}
