"""kind: what users and GitHub Actions run e2e on."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from eq_cluster.local.kubeconfig import user_kubeconfig_path
from eq_cluster.provider import NODE_PORT, ClusterError, ClusterStatus

KIND_CLUSTER_NAME = "eq"
# kind publishes this NodePort on the host, so NodePort services answer on 127.0.0.1.
KIND_CONFIG = f"""\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      - containerPort: {NODE_PORT}
        hostPort: {NODE_PORT}
        listenAddress: 127.0.0.1
        protocol: TCP
"""


def _run(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"`{' '.join(argv)}` failed:\n{result.stderr.strip()}")
    return result.stdout


class KindCluster:
    name = "kind"

    def __init__(self, cluster_name: str = KIND_CLUSTER_NAME) -> None:
        self.cluster_name = cluster_name

    @property
    def kubeconfig(self) -> Path:
        return user_kubeconfig_path()

    @property
    def context(self) -> str:
        return f"kind-{self.cluster_name}"

    @property
    def node_address(self) -> str:
        return "127.0.0.1"

    @property
    def host_address_for_pods(self) -> str:
        # The gateway of kind's docker network is the host as seen from the node and pods.
        network = json.loads(_run(["docker", "network", "inspect", "kind"]))
        for config in network[0]["IPAM"]["Config"]:
            gateway = config.get("Gateway", "")
            if gateway and ":" not in gateway:
                return str(gateway)
        raise ClusterError("kind's docker network has no IPv4 gateway")

    @property
    def registry(self) -> str | None:
        return None

    @property
    def base_image(self) -> str:
        return "python:3.11-slim"

    def _exists(self) -> bool:
        return self.cluster_name in _run(["kind", "get", "clusters"]).split()

    def up(self) -> None:
        if self._exists():
            _run(["kubectl", "config", "use-context", self.context])
            return
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as config:
            config.write(KIND_CONFIG)
            config.flush()
            _run(
                [
                    "kind",
                    "create",
                    "cluster",
                    "--name",
                    self.cluster_name,
                    "--config",
                    config.name,
                    "--wait",
                    "120s",
                ]
            )

    def down(self) -> None:
        _run(["kind", "delete", "cluster", "--name", self.cluster_name])

    def status(self) -> ClusterStatus:
        running = self._exists()
        nodes = _run(["kind", "get", "nodes", "--name", self.cluster_name]) if running else ""
        return ClusterStatus(self.name, running, self.context, {"nodes": nodes.strip() or "-"})

    def make_image_available(self, image: str) -> str:
        _run(["kind", "load", "docker-image", image, "--name", self.cluster_name])
        return image

    def leftovers(self) -> list[str]:
        return [f"kind cluster {self.cluster_name}"] if self._exists() else []
