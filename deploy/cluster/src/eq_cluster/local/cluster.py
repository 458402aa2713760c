"""The local cluster: a real single-node Kubernetes from source, run as host processes."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from functools import cached_property
from pathlib import Path

from eq_cluster.local import host, kubeconfig
from eq_cluster.local.binaries import Binaries
from eq_cluster.local.components import ADMIN_USER, NodeConfig, coredns_image, pause_image
from eq_cluster.local.images import (
    BASE_IMAGE,
    ImageBuilder,
    prepare_base_rootfs,
    registry_manifest,
)
from eq_cluster.local.layout import CLUSTER_NAME, CNI_BRIDGE, NODE_NAME, REGISTRY, Layout
from eq_cluster.local.processes import ProcessTable, pids_matching, terminate, wait_for
from eq_cluster.provider import ClusterError, ClusterStatus

BUILDX_PLUGIN = Path("/usr/local/lib/docker/cli-plugins/docker-buildx")
BUILDER_NAME = CLUSTER_NAME
# Stop order: the node first (so nothing restarts pods), the control plane, then the tools.
STOP_ORDER = (
    "kubelet",
    "kube-proxy",
    "containerd",
    "kube-scheduler",
    "kube-controller-manager",
    "kube-apiserver",
    "etcd",
    "buildkitd",
    "registry",
    "dockerd",
)
# buildkitd's graceful stop waits for every client connection (a builder a user left
# attached holds one); its state is transactional, so a short grace period is enough.
STOP_TIMEOUTS = {"buildkitd": 5.0}
DAEMON_BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "buildkitd",
)


def _say(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


class LocalCluster:
    name = "local"

    def __init__(self, layout: Layout | None = None) -> None:
        self.layout = layout or Layout.from_env()
        self.binaries = Binaries(self.layout)
        self.processes = ProcessTable(self.layout.pids, self.layout.logs)

    # --- the provider interface ------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.layout.admin_kubeconfig

    @property
    def context(self) -> str:
        return CLUSTER_NAME

    @cached_property
    def node_address(self) -> str:
        return host.node_address()

    @property
    def host_address_for_pods(self) -> str:
        # Pods reach the host through the node's own address (routed via the CNI bridge).
        return self.node_address

    @property
    def registry(self) -> str:
        return REGISTRY

    @property
    def base_image(self) -> str:
        return BASE_IMAGE

    @cached_property
    def config(self) -> NodeConfig:
        return NodeConfig(self.layout, self.binaries, self.node_address)

    def up(self) -> None:
        started = time.monotonic()
        self._clear_remains_of_killed_run()
        host.set_sysctls()
        host.enable_arm64_emulation()
        self.build()
        host.allow_bridge_forwarding()
        self.config.write_pki()
        self.config.write_kubeconfigs()
        self.config.write_configs()
        self._start_build_tools()
        self._ensure_cluster_images()
        self._start_control_plane()
        self._start_node()
        self._apply_addons()
        self._wait_until_ready()
        _say("ensuring the Python base image (built once with debootstrap, then cached)")
        self._image_builder().ensure_base_image(self.processes.log_path("base-image"))
        self._register_buildx_builder()
        merged = kubeconfig.merge_into_user_config(yaml_load(self.kubeconfig), context=CLUSTER_NAME)
        _say(f"up in {time.monotonic() - started:.0f} s; context {CLUSTER_NAME} in {merged}")

    def down(self) -> None:
        self._remove_pods()
        for name in STOP_ORDER:
            self.processes.stop(name, timeout=STOP_TIMEOUTS.get(name, 20.0))
        for pid in self._stray_pids():
            terminate(pid, timeout=5)
        host.kill_pod_processes()
        roots = [self.layout.state, self.layout.run]
        host.unmount_all(roots)
        host.remove_iptables_rules()
        host.remove_bridge()
        host.remove_pod_cgroups()
        host.remove_tree(self.layout.state)
        host.remove_tree(self.layout.run)
        self._unregister_buildx_builder()
        kubeconfig.remove_from_user_config(CLUSTER_NAME, ADMIN_USER, CLUSTER_NAME)
        _say("down: processes stopped, state removed (build cache kept)")

    def status(self) -> ClusterStatus:
        components = {}
        total_kib = 0
        for name in reversed(STOP_ORDER):
            pid = self.processes.pid(name)
            if pid:
                rss = _rss_kib(pid)
                total_kib += rss
                components[name] = f"running (pid {pid}, {rss / 1024:.0f} MiB)"
            elif name == "dockerd" and _docker_works():
                components[name] = "running (not started by this cluster)"
            else:
                components[name] = "stopped"
        pods_kib = sum(_rss_kib(pid) for pid in [*self._stray_pids(), *host.pod_process_ids()])
        components["shims and pods"] = f"{pods_kib / 1024:.0f} MiB"
        components["memory (RSS, started here)"] = f"{(total_kib + pods_kib) / 1024:.0f} MiB"
        api_ready = self._api_ready()
        components["api /readyz"] = "ok" if api_ready else "not ready"
        if api_ready:
            components["node"] = self._node_condition()
        return ClusterStatus(self.name, api_ready, CLUSTER_NAME, components)

    def make_image_available(self, image: str) -> str:
        """Push a docker image to the local registry (where containerd pulls from)."""
        if image.startswith(f"{REGISTRY}/"):
            if registry_manifest(image) is None:
                _run(["docker", "push", image])
            return image
        target = f"{REGISTRY}/{image.split('/')[-1]}"
        if ":" not in target.rsplit("/", 1)[1]:
            target += ":latest"
        _run(["docker", "tag", image, target])
        _run(["docker", "push", target])
        return target

    def leftovers(self) -> list[str]:
        found = [f"process {name}" for name in self.processes.names() if self.processes.pid(name)]
        found += [f"process {pid}: {_cmdline(pid)}" for pid in self._stray_pids()]
        found += [f"pod process {pid}: {_cmdline(pid)}" for pid in host.pod_process_ids()]
        found += [f"mount {m}" for m in host.owned_mounts([self.layout.state, self.layout.run])]
        found += host.owned_iptables_rules()
        if Path(f"/sys/class/net/{CNI_BRIDGE}").exists():
            found.append(f"network interface {CNI_BRIDGE}")
        found += [f"directory {d}" for d in (self.layout.state, self.layout.run) if d.exists()]
        return found

    # --- steps of `up` -------------------------------------------------------------------

    def _clear_remains_of_killed_run(self) -> None:
        """State left by a cluster whose processes were all killed (say, at the end of a
        session) is torn down first, so `up` never adopts half-dead pods and mounts."""
        names = self.processes.names()
        if self.layout.state.exists() and not any(self.processes.pid(n) for n in names):
            _say("no process of the previous run is alive: clearing its state first")
            self.down()

    def build(self) -> None:
        """Everything `up` needs built, into the cache (a no-op when cached): the Go builds,
        overlapped with debootstrapping the base image's root file systems (mostly
        downloads and unpacking, not the Go compiler). Needs no running cluster or dockerd,
        so CI can run it alongside the unit tests."""
        if self.binaries.missing_components():
            _say("building components from source (once; logs in the cache's logs/)")
        rootfs_errors: list[BaseException] = []

        def prepare_rootfs() -> None:
            try:
                prepare_base_rootfs(self.layout, self.processes.log_path("base-image"))
            except BaseException as error:  # re-raised in the calling thread
                rootfs_errors.append(error)

        rootfs = threading.Thread(target=prepare_rootfs, name="base-rootfs")
        rootfs.start()
        try:
            self.binaries.ensure_built()
        finally:
            rootfs.join()
        if rootfs_errors:
            raise rootfs_errors[0]

    def _start_build_tools(self) -> None:
        _say("starting registry, dockerd and buildkitd")
        self.processes.start(self.config.registry())
        wait_for(
            "the registry",
            lambda: _http_ok(f"http://{REGISTRY}/v2/"),
            30,
            lambda: self.processes.ensure_alive("registry"),
        )
        if not _docker_works():
            self.processes.start(self.config.dockerd())
            wait_for("dockerd", _docker_works, 60, lambda: self.processes.ensure_alive("dockerd"))
        self.processes.start(self.config.buildkitd())
        buildctl = str(self.binaries.path("buildctl"))
        address = f"unix://{self.layout.buildkit_socket}"
        wait_for(
            "buildkitd",
            lambda: _ok([buildctl, "--addr", address, "debug", "workers"]),
            60,
            lambda: self.processes.ensure_alive("buildkitd"),
        )
        BUILDX_PLUGIN.parent.mkdir(parents=True, exist_ok=True)
        built = self.binaries.path("docker-buildx")
        if not BUILDX_PLUGIN.exists() or BUILDX_PLUGIN.read_bytes() != built.read_bytes():
            shutil.copy2(built, BUILDX_PLUGIN)

    def _image_builder(self) -> ImageBuilder:
        return ImageBuilder(self.layout, self.binaries.path("buildctl"))

    def _ensure_cluster_images(self) -> None:
        builder = self._image_builder()
        log = self.processes.log_path("images")
        builder.ensure_scratch_image(pause_image(), self.binaries.path("pause"), log)
        builder.ensure_scratch_image(coredns_image(), self.binaries.path("coredns"), log)

    def _start_control_plane(self) -> None:
        _say("starting etcd and the control plane")
        pki = self.layout.pki
        self.processes.start(self.config.etcd())
        etcd_ctx = _client_tls(pki / "ca.crt", pki / "apiserver-etcd-client")
        wait_for(
            "etcd",
            lambda: _http_ok("https://127.0.0.1:2379/health", etcd_ctx),
            60,
            lambda: self.processes.ensure_alive("etcd"),
        )
        self.processes.start(self.config.kube_apiserver())
        wait_for(
            "kube-apiserver /readyz",
            self._api_ready,
            120,
            lambda: self.processes.ensure_alive("kube-apiserver"),
        )
        self.processes.start(self.config.kube_controller_manager())
        self.processes.start(self.config.kube_scheduler())

    def _start_node(self) -> None:
        _say("starting containerd, kubelet and kube-proxy")
        self.processes.start(self.config.containerd())
        wait_for(
            "containerd",
            self.layout.containerd_socket.exists,
            30,
            lambda: self.processes.ensure_alive("containerd"),
        )
        self.processes.start(self.config.kubelet())
        self.processes.start(self.config.kube_proxy())

    def _apply_addons(self) -> None:
        wait_for(
            "namespace kube-system",
            lambda: _ok(self._kubectl("get", "namespace", "kube-system")),
            60,
        )
        _run(self._kubectl("apply", "-f", str(self.config.config_path("coredns.yaml"))))

    def _wait_until_ready(self) -> None:
        _say("waiting for the node to be Ready and CoreDNS to be available")
        for name in ("kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"):
            self.processes.ensure_alive(name)

        def node_alive() -> None:
            for name in ("kubelet", "containerd", "kube-proxy"):
                self.processes.ensure_alive(name)

        wait_for(
            f"node {NODE_NAME} Ready", lambda: self._node_condition() == "Ready", 120, node_alive
        )
        wait_for(
            "CoreDNS available",
            lambda: _ok(
                self._kubectl(
                    "-n",
                    "kube-system",
                    "wait",
                    "--for=condition=Available",
                    "deployment/coredns",
                    "--timeout=2s",
                )
            ),
            120,
            node_alive,
        )

    def _register_buildx_builder(self) -> None:
        endpoint = f"unix://{self.layout.buildkit_socket}"
        if not _ok(["docker", "buildx", "inspect", BUILDER_NAME]):
            _run(
                [
                    "docker",
                    "buildx",
                    "create",
                    "--name",
                    BUILDER_NAME,
                    "--driver",
                    "remote",
                    endpoint,
                ]
            )
        # Like `kind`, make the new thing current: plain `docker buildx build` uses it.
        _run(["docker", "buildx", "use", BUILDER_NAME])

    # --- steps of `down` -----------------------------------------------------------------

    def _remove_pods(self) -> None:
        """Stop the kubelet, then remove pod sandboxes through CRI so CNI releases them."""
        self.processes.stop("kubelet")
        if self.processes.pid("containerd") is None:
            return
        crictl = [
            str(self.binaries.path("crictl")),
            "--runtime-endpoint",
            f"unix://{self.layout.containerd_socket}",
            "--timeout",
            "20s",
        ]
        subprocess.run(
            [*crictl, "rmp", "--all", "--force"], capture_output=True, check=False, timeout=120
        )

    def _stray_pids(self) -> list[int]:
        """Processes of this cluster without a pid file: containerd's shims, and daemons from
        the cache whose pid file was lost (a run interrupted between start and record)."""
        socket = str(self.layout.containerd_socket)
        daemons = {f"{self.binaries.path(name)}" for name in DAEMON_BINARIES}
        tracked = {self.processes.pid(name) for name in self.processes.names()}
        return [
            pid
            for pid in pids_matching(lambda argv: socket in argv or argv[0] in daemons)
            if pid not in tracked
        ]

    def _unregister_buildx_builder(self) -> None:
        if shutil.which("docker") and _ok(["docker", "buildx", "inspect", BUILDER_NAME]):
            subprocess.run(
                ["docker", "buildx", "rm", BUILDER_NAME], capture_output=True, check=False
            )

    # --- helpers ---------------------------------------------------------------------------

    def _kubectl(self, *args: str) -> list[str]:
        return [str(self.binaries.path("kubectl")), "--kubeconfig", str(self.kubeconfig), *args]

    def _api_ready(self) -> bool:
        pki = self.layout.pki
        if not (pki / "admin.crt").exists():
            return False
        context = _client_tls(pki / "ca.crt", pki / "admin")
        return _http_ok("https://127.0.0.1:6443/readyz", context)

    def _node_condition(self) -> str:
        result = subprocess.run(
            self._kubectl("get", "node", NODE_NAME, "-o", "json"),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            return "not registered"
        conditions = json.loads(result.stdout)["status"].get("conditions", [])
        ready = [c for c in conditions if c["type"] == "Ready"]
        if ready and ready[0]["status"] == "True":
            return "Ready"
        return f"NotReady: {ready[0].get('message', '') if ready else 'no Ready condition yet'}"


def yaml_load(path: Path) -> dict[str, object]:
    import yaml

    loaded: dict[str, object] = yaml.safe_load(path.read_text())
    return loaded


def _client_tls(ca: Path, cert_stem: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(f"{cert_stem}.crt", f"{cert_stem}.key")
    return context


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def _ok(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True, check=False, timeout=60).returncode == 0


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"`{' '.join(argv)}` failed:\n{result.stderr.strip()}")


def _docker_works() -> bool:
    return shutil.which("docker") is not None and _ok(["docker", "info"])


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
