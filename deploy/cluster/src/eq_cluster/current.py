"""Whatever cluster the current kubeconfig context points at; never created or deleted here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from eq_cluster.local.kubeconfig import user_kubeconfig_path
from eq_cluster.provider import ClusterError, ClusterStatus

# Optional settings for a cluster this project does not manage.
NODE_ADDRESS_ENV = "EQ_NODE_ADDRESS"
HOST_ADDRESS_ENV = "EQ_HOST_ADDRESS_FOR_PODS"
REGISTRY_ENV = "EQ_REGISTRY"
BASE_IMAGE_ENV = "EQ_BASE_IMAGE"


def _kubectl(*args: str) -> str:
    result = subprocess.run(["kubectl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"`kubectl {' '.join(args)}` failed:\n{result.stderr.strip()}")
    return result.stdout.strip()


class CurrentKubeconfigCluster:
    name = "current"

    @property
    def kubeconfig(self) -> Path:
        return user_kubeconfig_path()

    @property
    def context(self) -> str:
        return _kubectl("config", "current-context")

    @property
    def node_address(self) -> str:
        return os.environ.get(NODE_ADDRESS_ENV) or _kubectl(
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[0].status.addresses[?(@.type=='InternalIP')].address}",
        )

    @property
    def host_address_for_pods(self) -> str:
        address = os.environ.get(HOST_ADDRESS_ENV)
        if not address:
            raise ClusterError(f"set {HOST_ADDRESS_ENV} to where pods reach this host")
        return address

    @property
    def registry(self) -> str | None:
        return os.environ.get(REGISTRY_ENV)

    @property
    def base_image(self) -> str:
        return os.environ.get(BASE_IMAGE_ENV, "python:3.11-slim")

    def up(self) -> None:
        # Only checks that the cluster answers: it is not ours to create.
        _kubectl("get", "--raw", "/readyz")

    def down(self) -> None:
        """A cluster this project did not create is left running."""

    def status(self) -> ClusterStatus:
        try:
            ready = _kubectl("get", "--raw", "/readyz") == "ok"
        except ClusterError as error:
            return ClusterStatus(self.name, False, "?", {"api": str(error)})
        return ClusterStatus(self.name, ready, self.context, {"api /readyz": "ok"})

    def make_image_available(self, image: str) -> str:
        registry = self.registry
        if not registry:
            raise ClusterError(f"set {REGISTRY_ENV} to a registry this cluster pulls from")
        target = f"{registry}/{image.split('/')[-1]}"
        for argv in (["docker", "tag", image, target], ["docker", "push", target]):
            if subprocess.run(argv, capture_output=True, check=False).returncode != 0:
                raise ClusterError(f"`{' '.join(argv)}` failed")
        return target

    def leftovers(self) -> list[str]:
        return []
