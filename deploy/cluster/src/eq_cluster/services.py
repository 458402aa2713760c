"""Throwaway PostgreSQL and Redis servers started from local binaries (or taken from env).

The one launcher of both for every test and benchmark: the backend's tests and benchmark
run them on 127.0.0.1 with no password; the e2e scenarios and the deploy benchmark run them
on the address pods reach the host at, with a password (`pod_services`). Nothing here skips:
when neither a binary nor a URL is available, `ServiceUnavailable` says what to install or
start.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql


class ServiceUnavailable(RuntimeError):
    """A service the tests need is neither installed nor given by URL."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def _as_unprivileged() -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user then."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServiceUnavailable(
            "running as root and there is no `postgres` user to run PostgreSQL as; "
            "install postgresql (apt-get install postgresql) or set EQ_TEST_DATABASE_URL"
        ) from exc
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class PostgresServer:
    """A PostgreSQL server: either a throwaway one (`start`) or an external URL."""

    host: str
    port: int
    user: str = "postgres"
    password: str | None = field(default=None, repr=False)
    admin_db: str = "postgres"
    _proc_dir: Path | None = None
    _pg_ctl: str | None = None
    _prefix: list[str] = field(default_factory=list)
    _options: list[str] = field(default_factory=list)

    @classmethod
    def from_env_or_start(cls) -> PostgresServer:
        url = os.environ.get("EQ_TEST_DATABASE_URL")
        if url:
            return cls.from_url(url)
        return cls.start()

    @classmethod
    def from_url(cls, url: str) -> PostgresServer:
        parts = urlsplit(url.replace("+psycopg", "").replace("+asyncpg", ""))
        server = cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password,
            admin_db=(parts.path or "/postgres").lstrip("/") or "postgres",
        )
        try:
            server.connect().close()
        except psycopg.OperationalError as exc:
            raise ServiceUnavailable(
                f"EQ_TEST_DATABASE_URL is set but PostgreSQL does not answer there: {exc}"
            ) from exc
        return server

    @classmethod
    def start(
        cls, *, host: str = "127.0.0.1", password: str | None = None, stat_statements: bool = True
    ) -> PostgresServer:
        """A throwaway server on `host`. Without a password it trusts every local client;
        with one (any address pods may reach) it asks every client for it (scram-sha-256)."""
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not (initdb and pg_ctl):
            raise ServiceUnavailable(
                "PostgreSQL binaries (initdb, pg_ctl) not found: install PostgreSQL "
                "(apt-get install postgresql) or set EQ_TEST_DATABASE_URL to a server "
                "where the tests may create databases"
            )
        prefix = _as_unprivileged()
        tmp = Path(tempfile.mkdtemp(prefix="eq-pg-"))
        tmp.chmod(0o755)
        data, sock = tmp / "data", tmp / "sock"
        data.mkdir()
        sock.mkdir()
        auth = ["--auth=trust"]
        if password is not None:
            pwfile = tmp / "pw"
            pwfile.write_text(password)
            auth = ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        if prefix:
            for owned in (tmp, data, sock, *([pwfile] if password is not None else [])):
                shutil.chown(owned, "postgres")
        subprocess.run(
            [
                *prefix,
                initdb,
                "-D",
                str(data),
                "-U",
                "postgres",
                *auth,
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        if password is not None:  # pods connect from the pod network, not from loopback
            pwfile.unlink()  # initdb has stored it (hashed); the file is readable by others
            with (data / "pg_hba.conf").open("a") as hba:
                hba.write("host all all 0.0.0.0/0 scram-sha-256\n")
        port = free_port(host)
        opts = [
            f"-p {port}",
            f"-c listen_addresses={host}",
            f"-c unix_socket_directories={sock}",
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
            "-c max_connections=200",
        ]
        if stat_statements:
            opts += [
                "-c shared_preload_libraries=pg_stat_statements",
                "-c pg_stat_statements.track_utility=off",
            ]
        server = cls(
            host=host,
            port=port,
            password=password,
            _proc_dir=tmp,
            _pg_ctl=pg_ctl,
            _prefix=prefix,
            _options=opts,
        )
        server.resume()
        if stat_statements:
            with server.connect() as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return server

    @property
    def data_dir(self) -> Path | None:
        return self._proc_dir / "data" if self._proc_dir else None

    def postmaster_pid(self) -> int:
        """The PID of the postmaster (only for a server this process started)."""
        assert self.data_dir is not None, "not a throwaway server"
        return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])

    def url(self, db: str, driver: str = "postgresql") -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return urlunsplit((driver, f"{auth}@{self.host}:{self.port}", f"/{db}", "", ""))

    def connect(self, db: str | None = None) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=db or self.admin_db,
            autocommit=True,
            connect_timeout=5,
        )

    def create_database(self, name: str, template: str | None = None) -> str:
        """(Re)create database `name`, optionally as a copy of `template`; return its URL."""
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            tmpl = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{tmpl}')
        return self.url(name)

    def create_owned_database(self, name: str, password: str) -> str:
        """A login role `name` with `password` owning a new database `name`, as an
        application sees it (no superuser); return the URL to reach it as that role."""
        with self.connect() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(name)
                )
            )
        return urlunsplit(
            ("postgresql", f"{name}:{password}@{self.host}:{self.port}", f"/{name}", "", "")
        )

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _pg_ctl_command(self, *args: str) -> list[str]:
        """pg_ctl on this server's data directory; only a throwaway server has one."""
        if not (self._proc_dir and self._pg_ctl):
            raise ServiceUnavailable(
                "only a throwaway server (PostgresServer.start) can stop and start"
            )
        return [*self._prefix, self._pg_ctl, "-D", str(self.data_dir), *args]

    def resume(self) -> None:
        """Start (again, after `halt`) on the same port with the same data."""
        log = str(self._proc_dir / "log") if self._proc_dir else ""
        options = " ".join(self._options)
        command = self._pg_ctl_command("-l", log, "-w", "-t", "30", "-o", options, "start")
        subprocess.run(command, check=True, capture_output=True)

    def halt(self) -> None:
        """Shut down as an operator would for maintenance (fast: clients are disconnected,
        committed work is kept); `resume` starts it again."""
        command = self._pg_ctl_command("-m", "fast", "-w", "stop")
        subprocess.run(command, check=True, capture_output=True)

    def stop(self) -> None:
        if self._proc_dir and self._pg_ctl:
            command = self._pg_ctl_command("-m", "immediate", "-w", "stop")
            subprocess.run(command, check=False, capture_output=True)
            shutil.rmtree(self._proc_dir, ignore_errors=True)


@dataclass
class RedisServer:
    """A Redis server: a throwaway one that tests may stop and restart, or an external URL."""

    port: int
    host: str = "127.0.0.1"
    password: str | None = field(default=None, repr=False)
    external_url: str | None = field(default=None, repr=False)  # may hold a password
    _proc: subprocess.Popen[bytes] | None = None
    _binary: str | None = None

    @classmethod
    def from_env_or_start(cls) -> RedisServer:
        url = os.environ.get("EQ_TEST_REDIS_URL")
        if url:
            parts = urlsplit(url)
            return cls(
                port=parts.port or 6379, host=parts.hostname or "127.0.0.1", external_url=url
            )
        return cls.start()

    @classmethod
    def start(cls, *, host: str = "127.0.0.1", password: str | None = None) -> RedisServer:
        """A throwaway server on `host`, asking for `password` when one is given."""
        binary = shutil.which("redis-server")
        if not binary:
            raise ServiceUnavailable(
                "redis-server not found: install Redis (apt-get install redis-server) "
                "or set EQ_TEST_REDIS_URL"
            )
        server = cls(port=free_port(host), host=host, password=password, _binary=binary)
        server.resume()
        return server

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return self.external_url or f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def can_restart(self) -> bool:
        return self._binary is not None

    def resume(self) -> None:
        """Start (again) on the same port."""
        assert self._binary, "cannot start an external Redis"
        auth = ["--requirepass", self.password] if self.password else []
        self._proc = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                self.host,
                *auth,
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.host, self.port)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stopped dead (SIGSTOP) inside the block: connections stay open and
        every command hangs, as on a wedged host."""
        if self._proc is None:
            raise ServiceUnavailable("only a throwaway Redis (started here) can be frozen")
        self._proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self._proc.send_signal(signal.SIGCONT)

    def halt(self) -> None:
        """Stop the server (the port stays reserved for `resume`)."""
        if self._proc:
            self._proc.send_signal(signal.SIGTERM)
            self._proc.wait(10)
            self._proc = None

    def stop(self) -> None:
        self.halt()
