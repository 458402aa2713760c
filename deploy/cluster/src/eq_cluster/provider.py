"""The interface every cluster provider offers, so e2e scenarios have one code path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

# The NodePort that e2e scenarios expose services on. kind maps exactly this port to the
# host, so scenarios must use it rather than a random one.
NODE_PORT = 30080


@dataclass(frozen=True)
class ClusterStatus:
    """What `cluster.status` reports."""

    provider: str
    running: bool
    context: str
    # One line per component or check, e.g. {"kube-apiserver": "running (pid 123)"}.
    components: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        state = "running" if self.running else "not running"
        lines = [f"{self.provider} cluster ({self.context}): {state}"]
        lines += [f"  {name}: {detail}" for name, detail in self.components.items()]
        return "\n".join(lines)


class ClusterError(RuntimeError):
    """A cluster could not be brought up, reached or torn down; the message says why."""


@runtime_checkable
class ClusterProvider(Protocol):
    """A Kubernetes cluster that e2e scenarios and `inv deploy` can target."""

    name: str

    @property
    def kubeconfig(self) -> Path:
        """A kubeconfig file that contains `context`."""
        ...

    @property
    def context(self) -> str:
        """The kubeconfig context of this cluster."""
        ...

    @property
    def node_address(self) -> str:
        """Host-reachable address where NodePort services answer (port `NODE_PORT`)."""
        ...

    @property
    def host_address_for_pods(self) -> str:
        """Address at which pods reach servers listening on the host (e.g. PostgreSQL)."""
        ...

    @property
    def registry(self) -> str | None:
        """host:port of a registry that builds push to and the node pulls from, if any."""
        ...

    @property
    def base_image(self) -> str:
        """A Python 3.11 base image (python3 with venv) that builds for this cluster can use."""
        ...

    def up(self) -> None:
        """Create or start the cluster; a no-op when it already runs."""
        ...

    def down(self) -> None:
        """Stop the cluster and remove everything it created on this machine."""
        ...

    def status(self) -> ClusterStatus: ...

    def make_image_available(self, image: str) -> str:
        """Make a locally built image pullable by the cluster; return the ref pods should use."""
        ...

    def leftovers(self) -> list[str]:
        """Processes, mounts, rules or clusters of this provider still present (after down)."""
        ...
