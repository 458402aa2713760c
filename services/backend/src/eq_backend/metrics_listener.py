"""/metrics on a port of its own, for the scraper only (METRICS_PORT).

The API's port is public (Ingress, LoadBalancer); the metrics carry table row counts and
active users, which are nobody else's business. prometheus_client's own threaded HTTP
server reads the app's registry (its collectors are thread-safe) and answers on every
path, /metrics included.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

# The scraper comes from another pod; the Service and Ingress decide who reaches the port.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


class MetricsListener:
    def __init__(self, registry: CollectorRegistry, port: int, host: str = ALL_INTERFACES) -> None:
        self.registry = registry
        self.port = port
        self.host = host
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server, self._thread = start_http_server(
            self.port, addr=self.host, registry=self.registry
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
