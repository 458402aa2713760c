"""kind: what users and GitHub Actions run e2e on.

Where kindest/node can be pulled (GitHub) kind runs it as everywhere. Where it cannot (this
project's machines) the node image is built here (eq_cluster.kind_node) and kind is pointed
at it with `--image`; `EQ_KIND_NODE` chooses explicitly: `official`, `build`, or an image ref.

Both ways the cluster gets a registry: a registry container on kind's docker network that the
host pushes to on 127.0.0.1:5001 and the node's containerd pulls from through a mirror
(kind's documented local-registry setup). NodePort services are reached at the node
container's address on that network, not through a host port: host port 30080 may be taken
(the local cluster's kube-proxy owns it here), and on Linux the host routes to the network.
`EQ_KIND_HOST_PORT=1` maps the NodePort to 127.0.0.1 instead (Docker Desktop).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from functools import cached_property
from pathlib import Path

from eq_cluster.local.kubeconfig import user_kubeconfig_path
from eq_cluster.provider import NODE_PORT, ClusterError, ClusterStatus

KIND_CLUSTER_NAME = "eq"
KIND_NETWORK = "kind"
# kind v0.30.0's default node image (pkg/apis/config/defaults/image.go).
OFFICIAL_NODE_IMAGE = (
    "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a"
)
NODE_IMAGE_ENV = "EQ_KIND_NODE"
HOST_PORT_ENV = "EQ_KIND_HOST_PORT"
REGISTRY_CONTAINER = "eq-kind-registry"
REGISTRY_HOST_PORT = 5001
REGISTRY_VOLUME = "eq-kind-registry"
OFFICIAL_REGISTRY_IMAGE = "registry:2"
OFFICIAL_BASE_IMAGE = "python:3.11-slim"
# What the local cluster publishes (eq_cluster.local.images.BASE_IMAGE); builds reach it on
# the host, and the result is pushed to kind's registry.
OFFLINE_BASE_IMAGE = "127.0.0.1:5000/eq/python-base:3.11-bookworm"


# containerd reads registry hosts from here (hosts.toml per registry): containerd 1.6 (the
# node built here) and 2.x (kindest/node) both do, while 2.x dropped `registry.mirrors`.
CONTAINERD_CERTS_DIR = "/etc/containerd/certs.d"


def kind_config(*, node_port_on_host: bool, offline_kubeadm_patch: str | None) -> str:
    """The `kind create cluster --config` document.

    offline_kubeadm_patch: for the node image built here, which has no kindnetd (a bridge CNI
    config instead) and its own etcd/CoreDNS tags; None for kindest/node."""
    lines = [
        "kind: Cluster",
        "apiVersion: kind.x-k8s.io/v1alpha4",
        "containerdConfigPatches:",
        "  - |-",
        '    [plugins."io.containerd.grpc.v1.cri".registry]',
        f'      config_path = "{CONTAINERD_CERTS_DIR}"',
    ]
    if offline_kubeadm_patch is not None:
        lines += ["networking:", "  disableDefaultCNI: true", "kubeadmConfigPatches:", "  - |"]
        lines += [f"    {line}" for line in offline_kubeadm_patch.splitlines()]
    lines += ["nodes:", "  - role: control-plane"]
    if node_port_on_host:
        lines += [
            "    extraPortMappings:",
            f"      - containerPort: {NODE_PORT}",
            f"        hostPort: {NODE_PORT}",
            "        listenAddress: 127.0.0.1",
            "        protocol: TCP",
        ]
    return "\n".join(lines) + "\n"


def registry_hosts_toml(mirror: str) -> str:
    """containerd's hosts.toml that sends pulls for a registry name to `mirror`."""
    return f'[host."{mirror}"]\n  capabilities = ["pull", "resolve"]\n'


def _run(argv: list[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise ClusterError(f"`{' '.join(argv)}` failed:\n{result.stderr.strip()}")
    return result.stdout


def _kind(*args: str) -> str:
    """Run the kind binary (through the docker shim where the host needs it, kind_docker)."""
    from eq_cluster.kind_docker import kind_environment

    with tempfile.TemporaryDirectory(prefix="eq-kind-docker-") as shim_dir:
        return _run([kind_binary(), *args], env=kind_environment(Path(shim_dir)))


def _succeeds(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def _registry_exists() -> bool:
    # --type: the registry's storage volume has the same name.
    return _succeeds(["docker", "inspect", "--type", "container", REGISTRY_CONTAINER])


def kind_binary() -> str:
    """`kind` on PATH, else the pinned one built into the cache (built on first use)."""
    on_path = shutil.which("kind")
    if on_path:
        return on_path
    from eq_cluster.local.layout import Layout
    from eq_cluster.local.versions import assets_dir, version

    layout = Layout.from_env()
    cached = layout.component_bin("kind", version("kind"), "kind")
    if not cached.exists():
        build = subprocess.run(
            ["bash", str(assets_dir() / "build.sh"), "kind"],
            env={**os.environ, "EQ_CLUSTER_CACHE": str(layout.cache)},
            check=False,
        )
        if build.returncode != 0 or not cached.exists():
            raise ClusterError(f"building kind failed; log: {layout.cache}/logs/")
    return str(cached)


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
    def node_container(self) -> str:
        return f"{self.cluster_name}-control-plane"

    @property
    def node_address(self) -> str:
        if os.environ.get(HOST_PORT_ENV) == "1":
            return "127.0.0.1"
        return self._container_address(self.node_container)

    @property
    def host_address_for_pods(self) -> str:
        # The gateway of kind's docker network is the host as seen from the node and pods.
        network = json.loads(_run(["docker", "network", "inspect", KIND_NETWORK]))
        for config in network[0]["IPAM"]["Config"]:
            gateway = config.get("Gateway", "")
            if gateway and ":" not in gateway:
                return str(gateway)
        raise ClusterError("kind's docker network has no IPv4 gateway")

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{REGISTRY_HOST_PORT}"

    @property
    def base_image(self) -> str:
        explicit = os.environ.get("EQ_BASE_IMAGE")
        if explicit:
            return explicit
        return OFFICIAL_BASE_IMAGE if self._node_image_mode == "official" else OFFLINE_BASE_IMAGE

    @cached_property
    def _node_image_mode(self) -> str:
        """ "official" (kindest/node, pulled by kind), "build" (built here) or an image ref.
        Without EQ_KIND_NODE: official when it is present or can be pulled."""
        chosen = os.environ.get(NODE_IMAGE_ENV, "")
        if chosen:
            return chosen
        if _succeeds(["docker", "image", "inspect", OFFICIAL_NODE_IMAGE]) or _succeeds(
            ["docker", "pull", OFFICIAL_NODE_IMAGE]
        ):
            return "official"
        return "build"

    def _node_image(self) -> tuple[str, str | None]:
        """(the node image for `kind create --image`, the kubeadm patch it needs or None)."""
        mode = self._node_image_mode
        if mode == "official":
            return OFFICIAL_NODE_IMAGE, None
        from eq_cluster.kind_node import NodeImageBuilder, kubeadm_image_patch

        builder = NodeImageBuilder()
        image = builder.ensure_node_image() if mode == "build" else mode
        return image, kubeadm_image_patch(builder.etcd, builder.coredns)

    def _registry_image(self) -> str:
        if self._node_image_mode == "official":
            return OFFICIAL_REGISTRY_IMAGE
        from eq_cluster.kind_node import NodeImageBuilder

        return NodeImageBuilder().ensure_registry_image()

    def _container_address(self, container: str) -> str:
        networks = json.loads(
            _run(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", container])
        )
        address = networks.get(KIND_NETWORK, {}).get("IPAddress", "")
        if not address:
            raise ClusterError(f"container {container} has no address on network {KIND_NETWORK}")
        return str(address)

    def _exists(self) -> bool:
        return self.cluster_name in _kind("get", "clusters").split()

    def up(self) -> None:
        if not self._exists():
            self._create()
        self._ensure_registry()
        self._point_node_at_registry()
        _run(["kubectl", "config", "use-context", self.context])
        # `kind create --wait` waits for the node only; kubeadm's CoreDNS Deployment may not
        # have pods yet, and a cluster without DNS is not up for the tests and deploys.
        _run(
            [
                *("kubectl", "--kubeconfig", str(self.kubeconfig), "--context", self.context),
                *("-n", "kube-system", "rollout", "status", "deployment/coredns"),
                "--timeout=180s",
            ]
        )

    def _create(self) -> None:
        image, patch = self._node_image()
        config_text = kind_config(
            node_port_on_host=os.environ.get(HOST_PORT_ENV) == "1",
            offline_kubeadm_patch=patch,
        )
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as config:
            config.write(config_text)
            config.flush()
            _kind(
                *("create", "cluster", "--name", self.cluster_name, "--image", image),
                *("--config", config.name, "--wait", "180s"),
            )

    def _ensure_registry(self) -> None:
        """The registry container on kind's network; its storage volume outlives `down`."""
        state = subprocess.run(
            [
                "docker",
                "inspect",
                "--type",
                "container",
                "-f",
                "{{.State.Running}}",
                REGISTRY_CONTAINER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if state.stdout.strip() == "true":
            return
        if state.returncode == 0:
            _run(["docker", "rm", "-f", REGISTRY_CONTAINER])
        _run(
            [
                "docker",
                "run",
                "-d",
                "--name",
                REGISTRY_CONTAINER,
                "--restart",
                "unless-stopped",
                "--network",
                KIND_NETWORK,
                "-p",
                f"127.0.0.1:{REGISTRY_HOST_PORT}:5000",
                "-v",
                f"{REGISTRY_VOLUME}:/var/lib/registry",
                self._registry_image(),
            ]
        )

    def _point_node_at_registry(self) -> None:
        """Pods name images 127.0.0.1:5001/...; the node's containerd fetches them from the
        registry container by its name on the kind network (kind's local-registry recipe)."""
        hosts_dir = f"{CONTAINERD_CERTS_DIR}/{self.registry}"
        hosts = registry_hosts_toml(f"http://{REGISTRY_CONTAINER}:5000")
        _run(
            [
                "docker",
                "exec",
                self.node_container,
                "sh",
                "-c",
                f"mkdir -p '{hosts_dir}' && printf '%s' '{hosts}' > '{hosts_dir}/hosts.toml'",
            ]
        )

    def down(self) -> None:
        if _registry_exists():
            _run(["docker", "rm", "-f", REGISTRY_CONTAINER])
        _kind("delete", "cluster", "--name", self.cluster_name)

    def status(self) -> ClusterStatus:
        running = self._exists()
        components = {"node": "-", "registry": "-"}
        if running:
            components["node"] = f"{self.node_container} at {self.node_address}"
            components["node memory"] = self._memory(self.node_container)
        if _registry_exists():
            components["registry"] = f"{REGISTRY_CONTAINER} on {self.registry}"
        return ClusterStatus(self.name, running, self.context, components)

    def _memory(self, container: str) -> str:
        stats = _run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container])
        return stats.strip()

    def make_image_available(self, image: str) -> str:
        _kind("load", "docker-image", image, "--name", self.cluster_name)
        return image

    def leftovers(self) -> list[str]:
        found = [f"kind cluster {self.cluster_name}"] if self._exists() else []
        if _registry_exists():
            found.append(f"registry container {REGISTRY_CONTAINER}")
        return found
