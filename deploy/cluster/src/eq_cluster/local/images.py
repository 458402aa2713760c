"""Images the local cluster builds itself (no image registry can be pulled from here):
the pod sandbox (pause), CoreDNS, and a Debian Python base image from debootstrap (the arm64
one unpacked and configured from the host, not run under qemu).
All are built by buildkitd and pushed to the local registry, whose storage is cached.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from eq_cluster.local import foreign_rootfs
from eq_cluster.local.layout import REGISTRY, Layout
from eq_cluster.provider import ClusterError

BASE_IMAGE = f"{REGISTRY}/eq/python-base:3.11-bookworm"
BASE_PLATFORMS = ("linux/amd64", "linux/arm64")
DEBIAN_SUITE = "bookworm"
# What python:3.11-slim offers that the backend's Dockerfile relies on: python3 (3.11 in
# bookworm) with venv and pip for venvs, `python` on PATH, and Debian's public CA bundle.
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")

_MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def split_ref(ref: str) -> tuple[str, str, str]:
    """'host:port/name:tag' -> (host:port, name, tag)."""
    host, rest = ref.split("/", 1)
    name, _, tag = rest.rpartition(":")
    return host, name, tag


def registry_manifest(ref: str) -> dict[str, object] | None:
    """The manifest (or index) of `ref` in a plain-HTTP registry, or None if absent."""
    host, name, tag = split_ref(ref)
    request = urllib.request.Request(
        f"http://{host}/v2/{name}/manifests/{tag}", headers={"Accept": _MANIFEST_TYPES}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local http
            loaded: dict[str, object] = json.load(response)
            return loaded
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def manifest_platforms(ref: str) -> set[str]:
    """'os/arch' of each image in `ref`'s index (one entry for a single-platform image)."""
    manifest = registry_manifest(ref)
    if manifest is None:
        return set()
    entries = manifest.get("manifests")
    if not isinstance(entries, list):
        return {"single-platform"}
    return {
        f"{e['platform']['os']}/{e['platform']['architecture']}"
        for e in entries
        if isinstance(e, dict) and e.get("platform", {}).get("os") != "unknown"
    }


class ImageBuilder:
    def __init__(self, layout: Layout, buildctl: Path) -> None:
        self.layout = layout
        self.buildctl = buildctl

    def build(self, ref: str, context: Path, platforms: tuple[str, ...], log: Path) -> None:
        """Build context/Dockerfile for `platforms` and push `ref` to the local registry."""
        argv = [
            str(self.buildctl),
            "--addr",
            f"unix://{self.layout.buildkit_socket}",
            "build",
            "--frontend",
            "dockerfile.v0",
            "--local",
            f"context={context}",
            "--local",
            f"dockerfile={context}",
            "--opt",
            f"platform={','.join(platforms)}",
            "--output",
            f"type=image,name={ref},push=true",
        ]
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            raise ClusterError(f"building image {ref} failed; log: {log}")

    def ensure_scratch_image(self, ref: str, binary: Path, log: Path) -> None:
        """A `FROM scratch` image holding one static binary as its entrypoint."""
        if registry_manifest(ref) is not None:
            return
        with tempfile.TemporaryDirectory(prefix="eq-image-") as tmp:
            context = Path(tmp)
            shutil.copy2(binary, context / binary.name)
            (context / "Dockerfile").write_text(
                f'FROM scratch\nCOPY {binary.name} /{binary.name}\nENTRYPOINT ["/{binary.name}"]\n'
            )
            self.build(ref, context, ("linux/amd64",), log)

    def ensure_base_image(self, log: Path, platforms: tuple[str, ...] = BASE_PLATFORMS) -> None:
        if set(platforms) <= manifest_platforms(BASE_IMAGE):
            return
        rootfs_dir = prepare_base_rootfs(self.layout, log, platforms)
        (rootfs_dir / "Dockerfile").write_text(
            "FROM scratch\n"
            "ARG TARGETARCH\n"
            "ADD rootfs-${TARGETARCH}.tar /\n"
            "ENV LANG=C.UTF-8\n"
            'CMD ["python3"]\n'
        )
        self.build(BASE_IMAGE, rootfs_dir, platforms, log)


def prepare_base_rootfs(
    layout: Layout, log: Path, platforms: tuple[str, ...] = BASE_PLATFORMS
) -> Path:
    """The base image's root file systems as tarballs in the cache (kept once made)."""
    rootfs_dir = layout.cache / f"python-base-{DEBIAN_SUITE}"
    rootfs_dir.mkdir(parents=True, exist_ok=True)
    for platform in platforms:
        arch = platform.split("/")[1]
        build_rootfs_tarball(arch, rootfs_dir / f"rootfs-{arch}.tar", log)
    return rootfs_dir


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (never written into the repository)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for stanza in sources.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines() if re.match(r"^\w[\w-]*:", line)
            )
            if DEBIAN_SUITE in fields.get("Suites", "").split():
                return fields["URIs"].split()[0]
    for line in Path("/etc/apt/sources.list").read_text().splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == DEBIAN_SUITE:
            return words[1]
    raise ClusterError(f"no apt source for Debian {DEBIAN_SUITE} on this machine")


def build_rootfs_tarball(arch: str, tarball: Path, log: Path) -> None:
    """debootstrap a minimal Debian with Python into a tarball. Another architecture (arm64)
    is downloaded and unpacked by `debootstrap --foreign` and configured from the host
    (foreign_rootfs): none of its code runs but one ldconfig."""
    if tarball.exists():
        return
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(prefix=f"eq-rootfs-{arch}-", dir=tarball.parent) as tmp:
        root = Path(tmp) / "root"
        argv = [
            "debootstrap",
            "--variant=minbase",
            f"--arch={arch}",
            f"--include={','.join(BASE_PACKAGES)}",
            *([] if arch == host_arch() else ["--foreign"]),
            DEBIAN_SUITE,
            str(root),
            mirror,
        ]
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            out.write(f"\n--- {' '.join(argv)}\n".encode())
            out.flush()
            if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                raise ClusterError(f"debootstrap for {arch} failed; log: {log}")
            if arch != host_arch():
                configure_foreign(root, arch, out)
        pack_rootfs(root, tarball)


def pack_rootfs(root: Path, tarball: Path) -> None:
    """A debootstrapped root as a tarball for `docker import`, without apt's lists, caches
    and logs (written to a .partial first: a cut-short run never leaves a tarball)."""
    for leftover in ("var/lib/apt/lists", "var/cache/apt", "var/log"):
        shutil.rmtree(root / leftover, ignore_errors=True)
        (root / leftover).mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial")
    subprocess.run(
        ["tar", "-C", str(root), "--numeric-owner", "--exclude=./dev/*", "-cf", str(partial), "."],
        check=True,
    )
    partial.rename(tarball)


def host_arch() -> str:
    """Debian's name for this machine's architecture."""
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def configure_foreign(root: Path, arch: str, out: BinaryIO) -> None:
    """What debootstrap's second stage would have done, from the host (see foreign_rootfs)."""
    out.write(f"\n--- unpack and configure {arch} packages from the host\n".encode())
    out.flush()
    debs = foreign_rootfs.debs_of(root)
    foreign_rootfs.install(root, debs, arch)
    foreign_rootfs.configure(root)
    # The target's own ldconfig (binfmt_misc runs it): the host's skips foreign libraries.
    subprocess.run(
        ["chroot", str(root), "/sbin/ldconfig"], stdout=out, stderr=subprocess.STDOUT, check=True
    )
    shutil.rmtree(root / "debootstrap")
