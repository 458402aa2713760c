"""Fixtures for e2e tests against a real cluster from `eq_cluster` (deploy/cluster, dev only).

`cluster` brings the selected provider up once per session ($EQ_CLUSTER=local|kind|current,
default kind if it can run, else the local from-source cluster). If it cannot come up the
tests fail with the reason: a missing cluster is a failure here, never a skip.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eq_cluster import ClusterProvider, select_provider


def wait_until(what: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # the API may be briefly unavailable; report the last one
            last_error = error
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})")


@pytest.fixture(name="wait_until", scope="session")
def wait_until_fixture() -> Callable[..., Any]:
    """`wait_until(what, check, timeout)` for tests (conftest modules are not importable)."""
    return wait_until


@pytest.fixture(scope="session")
def cluster() -> ClusterProvider:
    try:
        provider = select_provider()
        provider.up()
    except Exception as error:
        pytest.fail(f"the cluster could not come up: {error}", pytrace=False)
    return provider


# Clients are made per test, from the kubeconfig as it is then: test_cluster takes the
# cluster down and up again, with a new certificate authority.
@pytest.fixture
def api_client(cluster: ClusterProvider) -> Any:
    from kubernetes import config

    return config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(cluster.kubeconfig), context=cluster.context
    )


@pytest.fixture
def core_v1(api_client: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api_client)


@pytest.fixture
def apps_v1(api_client: Any) -> Any:
    from kubernetes import client

    return client.AppsV1Api(api_client)


@pytest.fixture
def batch_v1(api_client: Any) -> Any:
    from kubernetes import client

    return client.BatchV1Api(api_client)


@pytest.fixture
def namespace(core_v1: Any) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    from kubernetes import client

    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # The service account controller creates `default` asynchronously; pods need it.
    wait_until(
        f"service account default in {name}",
        lambda: core_v1.read_namespaced_service_account("default", name),
        60,
    )
    yield name
    core_v1.delete_namespace(name)


def _phase(p: dict[str, Any]) -> str:
    errors = " ".join(f"{k} {v}" for k, v in p["socket_errors"].items())
    failed = sum(p["socket_errors"].values()) + p["non_2xx"]
    return (
        f"{p['requests']:,} requests in {p['seconds']} s ({p['rate']:,.0f}/s), {failed} failed "
        f"({errors}, non-2xx {p['non_2xx']}), p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms"
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """What users would have seen in each scenario under load (tests/e2e/release_load.py);
    also written as JSON to $EQ_E2E_FIGURES when it names a file."""
    from release_load import FIGURES

    if not FIGURES:
        return
    terminalreporter.section("requests under load, per scenario")
    for figures in FIGURES:
        terminalreporter.write_line(figures["scenario"])
        for phase in ("before", "during"):
            if phase in figures:
                terminalreporter.write_line(f"  {phase}: {_phase(figures[phase])}")
        extra = {k: v for k, v in figures.items() if k not in {"scenario", "before", "during"}}
        if extra:
            terminalreporter.write_line(f"  {json.dumps(extra, ensure_ascii=False)}")
    if os.environ.get("EQ_E2E_FIGURES"):
        Path(os.environ["EQ_E2E_FIGURES"]).write_text(json.dumps(FIGURES, indent=2) + "\n")
