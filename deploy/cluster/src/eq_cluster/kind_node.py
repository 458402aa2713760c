"""A kind node image built offline, for machines that cannot pull kindest/node.

What kind expects of a node image (kind v0.30.0, images/base and pkg/build/nodeimage): systemd
as PID 1 behind kind's entrypoint, containerd + runc + CNI plugins, kubeadm/kubelet/kubectl in
/usr/bin, the kubelet unit with kubeadm's drop-in, /kind/version, and the images kubeadm will
run already in containerd's `k8s.io` namespace. Here the base is Debian bookworm from
debootstrap (Debian's containerd 1.6, runc, CNI plugins) with kind's own files
(deploy/cluster/kind-node/files, copied from kind v0.30.0), and every image is made from the
binaries the local cluster builds from source, plus kubeadm.

Differences from kindest/node, all on purpose: no kindnetd and no local-path-provisioner (the
cluster is created with `disableDefaultCNI` and the image ships a bridge CNI config, the one
the local cluster uses; StorageClass falls back to kind's legacy host-path default), etcd and
CoreDNS at the versions pinned in versions.env instead of kubeadm's defaults (the kind config
patches kubeadm's image tags, see `kubeadm_image_patch`), and the pause image is the local
cluster's own (containerd's `sandbox_image`).

The image is tagged by a hash of everything that goes into it, so a second `up` reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from eq_cluster.local.binaries import Binaries, component_version
from eq_cluster.local.images import DEBIAN_SUITE, debian_mirror, pack_rootfs
from eq_cluster.local.layout import Layout
from eq_cluster.local.versions import assets_dir, version
from eq_cluster.provider import ClusterError

# kind's base image package list (images/base/Dockerfile), with Debian's containerd, runc and
# CNI plugins instead of kind's own builds of them, and without what only rootless or storage
# tests need (fuse-overlayfs, nfs-common, open-iscsi).
NODE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "containerd",
    "runc",
    "containernetworking-plugins",
    "iptables",
    "nftables",
    "conntrack",
    "iproute2",
    "ethtool",
    "util-linux",
    "mount",
    "kmod",
    "libseccomp2",
    "procps",
    "ca-certificates",
    "bash",
    # kind's createContainer hook (files/kind/bin/mount-product-files.sh) reads the bundle
    # with jq.
    "jq",
    "socat",
    "ebtables",
    "ipset",
)
NODE_REPOSITORY = "eq.local/kind-node"
BASE_REPOSITORY = "eq.local/kind-node-base"
REGISTRY_IMAGE_REPOSITORY = "eq.local/kind-registry"
KUBERNETES_BINARIES = ("kubeadm", "kubelet", "kubectl")


@dataclass(frozen=True)
class ComponentImage:
    """An image kubeadm (or containerd, for pause) runs, made of one binary from the cache."""

    ref: str
    component: str
    binary: str


def component_images(
    kubernetes: str, etcd: str, coredns: str, pause: str
) -> tuple[ComponentImage, ...]:
    """The images a kind node needs, named where kubeadm looks for them.

    kubeadm's own names for the control plane and kube-proxy (registry.k8s.io, the Kubernetes
    version); etcd and CoreDNS under kubeadm's repositories with the tags the kind config
    patches in (`kubeadm_image_patch`); pause under this project's name, as containerd's
    sandbox image (files/etc/containerd/config.toml is written with it)."""
    control_plane = (
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
    )
    return (
        *(
            ComponentImage(f"registry.k8s.io/{name}:{kubernetes}", "kubernetes", name)
            for name in control_plane
        ),
        ComponentImage(f"registry.k8s.io/etcd:{etcd}", "etcd", "etcd"),
        ComponentImage(f"registry.k8s.io/coredns/coredns:{coredns}", "coredns", "coredns"),
        ComponentImage(pause_image(pause), "pause", "pause"),
    )


def pause_image(pause: str) -> str:
    return f"eq.local/pause:{pause}"


def kubeadm_image_patch(etcd: str, coredns: str) -> str:
    """A kind `kubeadmConfigPatches` entry: use the etcd and CoreDNS built here."""
    return (
        "kind: ClusterConfiguration\n"
        "etcd:\n"
        "  local:\n"
        f"    imageTag: {etcd}\n"
        "dns:\n"
        f"  imageTag: {coredns}\n"
    )


def cri_base_spec(default_spec: str) -> str:
    """containerd's base OCI spec for pods, made as kind's base image makes it from `ctr oci
    spec`: kind's createContainer hook (product_uuid/product_name per node) and no rlimits."""
    spec = json.loads(default_spec)
    hooks = spec.setdefault("hooks", {}).setdefault("createContainer", [])
    hooks.append({"path": "/kind/bin/mount-product-files.sh"})
    spec.get("process", {}).pop("rlimits", None)
    return json.dumps(spec, indent=2) + "\n"


def containerd_config(kind_config: str, sandbox_image: str) -> str:
    """kind's containerd config with this image's pause, and pods' oom_score_adj kept at or
    above containerd's own: a negative one (kubelet asks -998 for sandboxes) needs
    CAP_SYS_RESOURCE, which the node lacks on hosts that cannot grant it (kind_docker), and
    runc then fails with "can't get final child's PID from pipe: EOF". kind sets the same
    for rootless nodes."""
    replacements = {
        'sandbox_image = "registry.k8s.io/pause:3.10"': f'sandbox_image = "{sandbox_image}"',
        "restrict_oom_score_adj = false": "restrict_oom_score_adj = true",
    }
    for old, new in replacements.items():
        if old not in kind_config:
            raise ClusterError(f"kind's containerd config has no `{old}` any more")
        kind_config = kind_config.replace(old, new)
    return kind_config


def content_key(parts: list[bytes]) -> str:
    """12 hex digits naming a build from everything that goes into it."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:12]


def component_dockerfile(base: str, binary: str) -> str:
    """One binary on the node's Debian base: kube-proxy needs iptables and conntrack from it,
    the others only libc-free binaries, but one shared base layer costs less than two."""
    return (
        f"FROM {base}\n"
        f"COPY {binary} /usr/local/bin/{binary}\n"
        f'ENTRYPOINT ["/usr/local/bin/{binary}"]\n'
    )


# kind's entrypoint, after making the cgroup hierarchies writable (kind_docker explains why).
ENTRYPOINT = '["/kind/bin/eq-writable-cgroups.sh", "/usr/local/bin/entrypoint", "/sbin/init"]'

NODE_DOCKERFILE = """\
FROM {base}
COPY files/ /
COPY bin/ /usr/bin/
# What kind's images/base Dockerfile does after installing its packages. Debian installs
# containerd in /usr/bin and the CNI plugins in /usr/lib/cni; kind's units and containerd's
# default CNI bin_dir expect /usr/local/bin and /opt/cni/bin.
RUN chmod 0755 /usr/local/bin/entrypoint /kind/bin/*.sh /usr/bin/kubeadm /usr/bin/kubelet \\
        /usr/bin/kubectl /usr/bin/crictl \\
    && ln -sf /usr/bin/containerd /usr/local/bin/containerd \\
    && mkdir -p /opt/cni/bin && ln -sf /usr/lib/cni/* /opt/cni/bin/ \\
    && cd /lib/systemd/system \\
    && find sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete \\
    && rm -f multi-user.target.wants/* /etc/systemd/system/*.wants/* local-fs.target.wants/* \\
        sockets.target.wants/*udev* sockets.target.wants/*initctl* basic.target.wants/* \\
    && cd / \\
    && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \\
    && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \\
    && systemctl mask systemd-binfmt.service \\
    && mkdir -p /etc/kubernetes/manifests \\
    && echo {kubernetes} > /kind/version
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT {entrypoint}
"""


def _run(argv: list[str], log: Path, env: dict[str, str] | None = None) -> str:
    """Run a build step, its output appended to `log`; fail with the step and its stderr."""
    with log.open("ab") as out:
        out.write(f"\n--- {' '.join(argv)}\n".encode())
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    with log.open("a") as out:
        out.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise ClusterError(f"`{' '.join(argv)}` failed (log: {log}):\n{result.stderr[-2000:]}")
    return str(result.stdout)


def image_exists(ref: str) -> bool:
    probe = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, check=False)
    return probe.returncode == 0


def files_dir() -> Path:
    return assets_dir() / "kind-node" / "files"


class NodeImageBuilder:
    """Builds (once per content key) the node image, its component images and the registry
    image, with docker and the cached from-source binaries."""

    def __init__(self, layout: Layout | None = None) -> None:
        self.layout = layout or Layout.from_env()
        self.binaries = Binaries(self.layout)
        self.kubernetes = version("kubernetes")
        self.etcd = version("etcd")
        self.coredns = version("coredns")
        self.pause = component_version("pause")
        self.work = self.layout.cache / f"kind-node-{DEBIAN_SUITE}"
        self.log = self.layout.cache / "logs" / f"kind-node-{DEBIAN_SUITE}.log"

    def images(self) -> tuple[ComponentImage, ...]:
        return component_images(self.kubernetes, self.etcd, self.coredns, self.pause)

    def base_key(self) -> str:
        return content_key([DEBIAN_SUITE.encode(), " ".join(NODE_PACKAGES).encode()])

    def node_key(self) -> str:
        files = sorted(p for p in files_dir().rglob("*") if p.is_file())
        # This module too: how the image is put together is part of what it is.
        parts = [self.base_key().encode(), Path(__file__).read_bytes()]
        parts += [str(p.relative_to(files_dir())).encode() + p.read_bytes() for p in files]
        # The refs carry every binary's version (the cache is keyed by them, pause by hash).
        parts += [i.ref.encode() for i in self.images()]
        # CoreDNS's image keeps upstream's tag for kubeadm; our plugin list is in its key.
        parts.append(component_version("coredns").encode())
        return content_key(parts)

    def base_image(self) -> str:
        return f"{BASE_REPOSITORY}:{DEBIAN_SUITE}-{self.base_key()}"

    def node_image(self) -> str:
        return f"{NODE_REPOSITORY}:{self.kubernetes}-{self.node_key()}"

    def registry_image(self) -> str:
        return f"{REGISTRY_IMAGE_REPOSITORY}:{DEBIAN_SUITE}-{self.base_key()}"

    # --- building ---------------------------------------------------------------------

    def ensure_node_image(self) -> str:
        ref = self.node_image()
        if image_exists(ref):
            return ref
        started = time.monotonic()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._ensure_binaries()
        self._ensure_base_image()
        with tempfile.TemporaryDirectory(prefix="eq-kind-node-") as tmp:
            archive = self._component_archive(Path(tmp))
            unloaded = f"{NODE_REPOSITORY}:{self.kubernetes}-{self.node_key()}-unloaded"
            self._build_node_filesystem(Path(tmp) / "node", unloaded)
            self._preload_images(unloaded, archive, ref)
            _run(["docker", "rmi", unloaded], self.log)
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "node-build-seconds").write_text(f"{time.monotonic() - started:.0f}\n")
        return ref

    def ensure_registry_image(self) -> str:
        """Debian's docker-registry (the host's binary: same suite as the base, libc only)
        on the node's base, for a registry container on kind's network."""
        ref = self.registry_image()
        if image_exists(ref):
            return ref
        host_registry = shutil.which("docker-registry")
        if host_registry is None:
            raise ClusterError("docker-registry not found (Debian package docker-registry)")
        self._ensure_base_image()
        with tempfile.TemporaryDirectory(prefix="eq-kind-registry-") as tmp:
            context = Path(tmp)
            shutil.copy2(host_registry, context / "docker-registry")
            (context / "Dockerfile").write_text(
                component_dockerfile(self.base_image(), "docker-registry")
                + 'CMD ["serve", "/etc/docker/registry/config.yml"]\n'
                + "COPY config.yml /etc/docker/registry/config.yml\n"
            )
            (context / "config.yml").write_text(REGISTRY_CONFIG)
            _run(["docker", "build", "-q", "-t", ref, str(context)], self.log, env=_legacy_build())
        return ref

    def _ensure_binaries(self) -> None:
        self.binaries.ensure_built()
        kubeadm = self._kubeadm_path()
        if not kubeadm.exists():
            _run(
                ["bash", str(assets_dir() / "build.sh"), "kubeadm"],
                self.log,
                env={**os.environ, "EQ_CLUSTER_CACHE": str(self.layout.cache)},
            )

    def _kubeadm_path(self) -> Path:
        return self.layout.component_bin("kubeadm", self.kubernetes, "kubeadm")

    def _ensure_base_image(self) -> None:
        ref = self.base_image()
        if image_exists(ref):
            return
        tarball = self.work / f"rootfs-{self.base_key()}.tar"
        if not tarball.exists():
            self._debootstrap(tarball)
        _run(["docker", "import", str(tarball), ref], self.log)

    def _debootstrap(self, tarball: Path) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="rootfs-", dir=self.work) as tmp:
            root = Path(tmp) / "root"
            _run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(NODE_PACKAGES)}",
                    DEBIAN_SUITE,
                    str(root),
                    debian_mirror(),
                ],
                self.log,
            )
            pack_rootfs(root, tarball)

    def _component_archive(self, tmp: Path) -> Path:
        """Every component image, built on the base and saved into one docker archive."""
        refs = []
        for image in self.images():
            context = tmp / image.binary
            context.mkdir()
            shutil.copy2(self.binaries.path(image.binary), context / image.binary)
            (context / "Dockerfile").write_text(
                component_dockerfile(self.base_image(), image.binary)
            )
            _run(
                ["docker", "build", "-q", "-t", image.ref, str(context)],
                self.log,
                env=_legacy_build(),
            )
            refs.append(image.ref)
        archive = tmp / "images.tar"
        _run(["docker", "save", "-o", str(archive), *refs], self.log)
        # The node holds them now; left in dockerd they would shadow nothing but take space.
        _run(["docker", "rmi", *refs], self.log)
        return archive

    def _build_node_filesystem(self, context: Path, ref: str) -> None:
        shutil.copytree(files_dir(), context / "files", symlinks=True)
        config = context / "files" / "etc" / "containerd" / "config.toml"
        config.write_text(containerd_config(config.read_text(), pause_image(self.pause)))
        spec = _run(["docker", "run", "--rm", self.base_image(), "ctr", "oci", "spec"], self.log)
        (config.parent / "cri-base.json").write_text(cri_base_spec(spec))
        (context / "bin").mkdir()
        for binary in ("kubelet", "kubectl", "crictl"):
            shutil.copy2(self.binaries.path(binary), context / "bin" / binary)
        shutil.copy2(self._kubeadm_path(), context / "bin" / "kubeadm")
        (context / "Dockerfile").write_text(
            NODE_DOCKERFILE.format(
                base=self.base_image(), kubernetes=self.kubernetes, entrypoint=ENTRYPOINT
            )
        )
        _run(["docker", "build", "-q", "-t", ref, str(context)], self.log, env=_legacy_build())

    def _preload_images(self, unloaded: str, archive: Path, ref: str) -> None:
        """As kind's node image build does: start containerd in a build container, import the
        images into its `k8s.io` namespace (not unpacked: the node's containerd unpacks what
        it runs), and commit the container."""
        name = f"eq-kind-node-build-{os.getpid()}"
        _run(
            [
                "docker",
                "run",
                "-d",
                "--name",
                name,
                "--entrypoint",
                "sleep",
                "--security-opt",
                "seccomp=unconfined",
                unloaded,
                "infinity",
            ],
            self.log,
        )
        try:
            _run(["docker", "cp", str(archive), f"{name}:/images.tar"], self.log)
            _run(["docker", "exec", name, "sh", "-c", PRELOAD_SCRIPT], self.log)
            _run(
                [
                    "docker",
                    "commit",
                    "--change",
                    f"ENTRYPOINT {ENTRYPOINT}",
                    "--change",
                    "CMD []",
                    name,
                    ref,
                ],
                self.log,
            )
        finally:
            subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)


# containerd in the build container only needs its content store and image metadata; the
# CRI plugin and snapshotters may fail to initialise there, which does not stop the import.
PRELOAD_SCRIPT = """\
set -eu
containerd >/tmp/containerd.log 2>&1 &
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done
ctr -n k8s.io images import --no-unpack /images.tar
ctr -n k8s.io images ls -q
kill $!
wait $! || true
rm -f /images.tar /tmp/containerd.log
"""

REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: 0.0.0.0:5000
"""


def _legacy_build() -> dict[str, str]:
    # dockerd's classic builder: FROM an image that exists only in this daemon (docker import)
    # without a builder instance; buildx's current builder here is a remote buildkitd.
    return {**os.environ, "DOCKER_BUILDKIT": "0"}
