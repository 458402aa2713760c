"""Acceptance of a cluster provider (issue 5): a real cluster, real images, real traffic.

Run: `EQ_CLUSTER=local pytest tests/e2e/test_cluster.py` (as root on the build machines).
The last test tears the cluster down, checks nothing is left and brings it back up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eq_cluster import NODE_PORT, ClusterProvider

pytestmark = pytest.mark.cluster

Wait = Callable[..., Any]

WEB_MARKER = "eq-e2e-web"
PLATFORMS = ("linux/amd64", "linux/arm64")
POSTGRES_PORT = 55432
WEB_DOCKERFILE = f"""\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
# Runs under qemu for arm64: proves the emulated platform really executes.
RUN mkdir /srv/web && python3 -c "import platform; print(platform.machine())" > /srv/web/arch \\
    && echo {WEB_MARKER} > /srv/web/index.html
WORKDIR /srv/web
CMD ["python3", "-m", "http.server", "8080"]
"""


def _run(*argv: str, timeout: float = 1800) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="session")
def web_image(cluster: ClusterProvider) -> str:
    """A small HTTP server image built by buildx for two platforms and made pullable."""
    with tempfile.TemporaryDirectory(prefix="eq-e2e-web-") as context:
        Path(context, "Dockerfile").write_text(WEB_DOCKERFILE)
        build = ["docker", "buildx", "build", "--build-arg", f"BASE_IMAGE={cluster.base_image}"]
        if cluster.registry:
            ref = f"{cluster.registry}/eq/e2e-web:test"
            _run(*build, "--platform", ",".join(PLATFORMS), "--push", "-t", ref, context)
            return ref
        ref = "eq/e2e-web:test"
        _run(*build, "--load", "-t", ref, context)
        return cluster.make_image_available(ref)


def _manifest(ref: str) -> dict[str, Any]:
    host, rest = ref.split("/", 1)
    name, tag = rest.rsplit(":", 1)
    request = urllib.request.Request(
        f"http://{host}/v2/{name}/manifests/{tag}",
        headers={
            "Accept": "application/vnd.oci.image.index.v1+json, "
            "application/vnd.docker.distribution.manifest.list.v2+json"
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local registry
        loaded: dict[str, Any] = json.load(response)
        return loaded


def test_node_ready_and_coredns_running(core_v1: Any) -> None:
    nodes = core_v1.list_node().items
    assert nodes, "the cluster has no node"
    for node in nodes:
        ready = {c.type: c.status for c in node.status.conditions}.get("Ready")
        assert ready == "True", f"node {node.metadata.name} is not Ready"
    dns_pods = core_v1.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns")
    assert dns_pods.items, "no CoreDNS pod in kube-system"
    assert all(p.status.phase == "Running" for p in dns_pods.items), [
        (p.metadata.name, p.status.phase) for p in dns_pods.items
    ]


def test_two_platform_image_is_in_the_registry(cluster: ClusterProvider, web_image: str) -> None:
    assert cluster.registry, f"the {cluster.name} provider has no registry to build into"
    index = _manifest(web_image)
    platforms = {
        f"{m['platform']['os']}/{m['platform']['architecture']}"
        for m in index.get("manifests", [])
        if m["platform"]["os"] != "unknown"  # buildkit's attestation manifests
    }
    assert set(PLATFORMS) <= platforms, f"manifest list of {web_image}: {platforms}"


def _web_deployment(namespace: str, image: str) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": image,
                            "ports": [{"containerPort": 8080}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
                        }
                    ]
                },
            },
        },
    }


def _job(name: str, namespace: str, image: str, script: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": name, "image": image, "command": ["python3", "-c", script]}
                    ],
                }
            },
        },
    }


def _job_outcome(batch_v1: Any, name: str, namespace: str) -> str | None:
    job = batch_v1.read_namespaced_job(name, namespace)
    for condition in job.status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def _wait_job(
    wait_until: Wait, batch_v1: Any, core_v1: Any, name: str, namespace: str
) -> tuple[str, str]:
    outcome = wait_until(
        f"job {name} to finish", lambda: _job_outcome(batch_v1, name, namespace), 180
    )
    pods = core_v1.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    logs = "".join(core_v1.read_namespaced_pod_log(p.metadata.name, namespace) for p in pods)
    return outcome, logs


def _apply(api_client: Any, manifest: dict[str, Any]) -> None:
    from kubernetes import utils

    utils.create_from_dict(api_client, manifest)  # type: ignore[no-untyped-call]


def test_deployment_nodeport_dns_and_jobs(
    cluster: ClusterProvider,
    api_client: Any,
    core_v1: Any,
    apps_v1: Any,
    batch_v1: Any,
    namespace: str,
    web_image: str,
    wait_until: Wait,
) -> None:
    _apply(api_client, _web_deployment(namespace, web_image))
    _apply(
        api_client,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "type": "NodePort",
                "selector": {"app": "web"},
                "ports": [{"port": 80, "targetPort": 8080, "nodePort": NODE_PORT}],
            },
        },
    )

    def available() -> bool:
        status = apps_v1.read_namespaced_deployment("web", namespace).status
        return bool(status.available_replicas == 2)

    wait_until("deployment web with 2 available replicas", available, 180)

    def answers() -> str:
        url = f"http://{cluster.node_address}:{NODE_PORT}/"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    body = wait_until("the NodePort service to answer from the host", answers, 60)
    assert WEB_MARKER in body

    cluster_ip = core_v1.read_namespaced_service("web", namespace).spec.cluster_ip
    dns_name = f"web.{namespace}.svc.cluster.local"
    resolve = f"import socket; print(socket.gethostbyname({dns_name!r}))"
    _apply(api_client, _job("resolve", namespace, web_image, resolve))
    outcome, logs = _wait_job(wait_until, batch_v1, core_v1, "resolve", namespace)
    assert outcome == "Complete", f"DNS job {outcome}: {logs}"
    assert logs.strip() == cluster_ip, f"{dns_name} resolved to {logs!r}, expected {cluster_ip}"

    _apply(api_client, _job("fails", namespace, web_image, "raise SystemExit(1)"))
    outcome, _ = _wait_job(wait_until, batch_v1, core_v1, "fails", namespace)
    assert outcome == "Failed"


@pytest.fixture
def host_postgres(cluster: ClusterProvider) -> Iterator[str]:
    """A throwaway PostgreSQL server on the host, listening where pods reach the host."""
    address = cluster.host_address_for_pods
    bin_dir = max(Path("/usr/lib/postgresql").glob("*/bin"), default=None)
    assert bin_dir, "PostgreSQL server binaries are not installed (/usr/lib/postgresql/*/bin)"
    data = Path(tempfile.mkdtemp(prefix="eq-e2e-pg-"))
    shutil.chown(data, "postgres", "postgres")
    password_file = data / "pw"
    password_file.write_text(os.urandom(16).hex())
    shutil.chown(password_file, "postgres", "postgres")

    def as_postgres(*argv: str) -> None:
        _run("runuser", "-u", "postgres", "--", *argv, timeout=120)

    as_postgres(
        str(bin_dir / "initdb"),
        "-D",
        str(data / "db"),
        "--auth=scram-sha-256",
        f"--pwfile={password_file}",
    )
    password_file.unlink()
    (data / "db" / "pg_hba.conf").open("a").write("host all all 0.0.0.0/0 scram-sha-256\n")
    options = f"-c listen_addresses={address} -p {POSTGRES_PORT} -k {data}"
    as_postgres(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data / "db"),
        "-o",
        options,
        "-l",
        str(data / "log"),
        "-w",
        "start",
    )
    try:
        yield address
    finally:
        as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "stop")
        shutil.rmtree(data, ignore_errors=True)


# An SSLRequest: any PostgreSQL server answers it with one byte, S or N, before auth.
POSTGRES_PROBE = """
import socket, struct, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as s:
    s.sendall(struct.pack("!ii", 8, 80877103))
    print("postgres answered", s.recv(1).decode())
"""


def test_pod_reaches_postgres_on_the_host(
    api_client: Any,
    core_v1: Any,
    batch_v1: Any,
    namespace: str,
    web_image: str,
    host_postgres: str,
    wait_until: Wait,
) -> None:
    job = _job("postgres", namespace, web_image, POSTGRES_PROBE)
    # python3 -c SCRIPT ARGS...: the script reads the address and port from sys.argv.
    job["spec"]["template"]["spec"]["containers"][0]["command"] += [
        host_postgres,
        str(POSTGRES_PORT),
    ]
    _apply(api_client, job)
    outcome, logs = _wait_job(wait_until, batch_v1, core_v1, "postgres", namespace)
    assert outcome == "Complete", f"postgres probe {outcome}: {logs}"
    assert logs.strip() in ("postgres answered N", "postgres answered S"), logs


def test_down_leaves_nothing_behind_and_up_is_fast(cluster: ClusterProvider) -> None:
    cluster.down()
    assert cluster.leftovers() == [], "left behind after down"
    started = time.monotonic()
    cluster.up()
    elapsed = time.monotonic() - started
    if cluster.name == "local":
        assert elapsed <= 60, f"a warm `up` after `down` took {elapsed:.0f} s (limit 60 s)"
