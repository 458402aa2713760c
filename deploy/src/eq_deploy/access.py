"""How this machine reaches the Service: an explicit URL, the environment's NodePort URL, a
LoadBalancer address, a node address, or a `kubectl port-forward` when none answers."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

from eq_deploy.errors import DeployError
from eq_deploy.kube import Kube
from eq_deploy.render import SERVICE_NAME


def _answers(url: str) -> bool:
    import httpx

    try:
        httpx.get(url.rstrip("/") + "/health", timeout=2)
    except httpx.HTTPError:
        return False
    return True


def candidate_urls(kube: Kube, namespace: str, env_url: str) -> list[str]:
    urls: list[str] = []
    if env_url:
        urls.append(env_url)
    service: dict[str, Any] = kube.get("Service", SERVICE_NAME, namespace) or {}
    spec = service.get("spec") or {}
    port = (spec.get("ports") or [{}])[0]
    for ingress in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        host = ingress.get("ip") or ingress.get("hostname")
        if host:
            urls.append(f"http://{host}:{port.get('port', 80)}")
    if spec.get("type") == "NodePort" and port.get("nodePort"):
        for node in kube.items("Node"):
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == "InternalIP":
                    urls.append(f"http://{address['address']}:{port['nodePort']}")
    return list(dict.fromkeys(urls))


@contextlib.contextmanager
def service_url(
    kube: Kube, namespace: str, *, explicit: str = "", env_url: str = "", wait_for_any: float = 0
) -> Iterator[str]:
    """Yield a base URL that reaches the Service (a port-forward lives for the block)."""
    if explicit:
        yield explicit
        return
    deadline = time.monotonic() + wait_for_any
    while True:
        for url in candidate_urls(kube, namespace, env_url):
            if _answers(url):
                yield url
                return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    with port_forward(kube, namespace) as url:
        yield url


@contextlib.contextmanager
def port_forward(kube: Kube, namespace: str) -> Iterator[str]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise DeployError(
            "smoke: the Service is not reachable from here and kubectl (for a port-forward) "
            "is missing; pass --smoke-url"
        )
    cmd = [
        kubectl,
        "port-forward",
        "--address",
        "127.0.0.1",
        "-n",
        namespace,
        f"service/{SERVICE_NAME}",
        ":80",
    ]
    if kube.context:
        cmd[1:1] = ["--context", kube.context]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not match:
            raise DeployError(f"smoke: kubectl port-forward failed: {line.strip() or 'no output'}")
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
