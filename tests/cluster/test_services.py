"""The one PostgreSQL/Redis launcher (eq_cluster.services) in the form pods use: on a given
address, behind a password, the database owned by an application role. Real servers."""

from __future__ import annotations

import importlib
import pkgutil
from urllib.parse import urlsplit, urlunsplit

import eq_cluster
import psycopg
import pytest
import redis
from eq_cluster.pod_services import Postgres, Redis


def test_every_module_of_the_dev_package_imports() -> None:
    names = [m.name for m in pkgutil.walk_packages(eq_cluster.__path__, "eq_cluster.")]
    assert "eq_cluster.local.cluster" in names
    for name in names:
        importlib.import_module(name)


def test_pod_postgres_asks_for_the_password_and_the_app_role_owns_its_database() -> None:
    postgres = Postgres.start("127.0.0.1")
    try:
        url = urlsplit(postgres.url)
        assert (url.username, url.path) == ("eq", "/eq")
        with psycopg.connect(postgres.url, connect_timeout=5) as conn:
            owner, superuser = conn.execute(
                "SELECT pg_get_userbyid(datdba), rolsuper FROM pg_database, pg_roles "
                "WHERE datname = 'eq' AND rolname = current_user"
            ).fetchone() or (None, None)
            assert (owner, superuser) == ("eq", False)
            conn.execute("CREATE TABLE t (id int)")  # the owner may create its schema
        wrong = urlunsplit(url._replace(netloc=f"eq:wrong@{url.hostname}:{url.port}"))
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(wrong, connect_timeout=5)
    finally:
        postgres.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres.url, connect_timeout=2)


def test_pod_redis_asks_for_the_password() -> None:
    server = Redis.start("127.0.0.1")
    try:
        client = redis.Redis.from_url(server.url, socket_timeout=2)
        assert client.ping()
        url = urlsplit(server.url)
        anonymous = redis.Redis(host=url.hostname or "", port=url.port or 0, socket_timeout=2)
        with pytest.raises(redis.AuthenticationError):
            anonymous.get("x")
    finally:
        server.stop()
