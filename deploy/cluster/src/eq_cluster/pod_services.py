"""The PostgreSQL and Redis a deployed backend connects to in the e2e scenarios and the deploy
benchmark: throwaway servers (started by `eq_cluster.services`) on the address pods reach
the host at, each behind a password, as an application would meet them in production."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from eq_cluster.services import PostgresServer, RedisServer


@dataclass
class Postgres:
    """A server holding database `eq`, owned by the login role `eq` (no superuser)."""

    server: PostgresServer
    url: str = field(repr=False)  # holds the password

    @classmethod
    def start(cls, host: str) -> Postgres:
        server = PostgresServer.start(
            host=host, password=secrets.token_hex(12), stat_statements=False
        )
        try:
            url = server.create_owned_database("eq", secrets.token_hex(12))
        except BaseException:
            server.stop()
            raise
        return cls(server, url)

    def halt(self) -> None:
        self.server.halt()

    def resume(self) -> None:
        self.server.resume()

    def stop(self) -> None:
        self.server.stop()


@dataclass
class Redis:
    """A server asking every client for a password."""

    server: RedisServer

    @classmethod
    def start(cls, host: str) -> Redis:
        return cls(RedisServer.start(host=host, password=secrets.token_hex(12)))

    @property
    def url(self) -> str:
        return self.server.url

    def halt(self) -> None:
        self.server.halt()

    def resume(self) -> None:
        self.server.resume()

    def stop(self) -> None:
        self.server.stop()
