"""Building and running docker/backend.Dockerfile for the image tests and measurements.

The build is the one `inv build` runs: `docker buildx build -f docker/backend.Dockerfile`,
the CA bundle as the `cacert` BuildKit secret, `--build-arg BASE_IMAGE=...`. Without the
buildx plugin, a Docker client with BuildKit built in (`DOCKER_BUILDKIT=1 docker build`).

Base image: $EQ_BASE_IMAGE, else the local cluster's base in the local registry when it is
there (`inv cluster.up` builds it), else the Dockerfile's default (an official slim image,
which needs a registry that can be pulled from).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "backend.Dockerfile"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
UID = 10001


class DockerUnavailable(RuntimeError):
    """No Docker engine, or no BuildKit-capable client: says what to start or install."""


def docker(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result


def require_docker() -> None:
    if shutil.which("docker") is None:
        raise DockerUnavailable("no docker client: apt-get install docker.io")
    if docker("info", check=False, timeout=30).returncode != 0:
        raise DockerUnavailable(
            "no Docker engine answers: start dockerd (`dockerd &`, or `inv cluster.up`)"
        )


def has_buildx() -> bool:
    return docker("buildx", "version", check=False, timeout=30).returncode == 0


def builtin_buildkit_client() -> str | None:
    """A docker client older than 23 (Debian's docker.io is 20.10): those run BuildKit
    builds themselves with DOCKER_BUILDKIT=1; newer ones need the buildx plugin."""
    for client in (shutil.which("docker"), "/usr/bin/docker"):
        if not client or not Path(client).exists():
            continue
        version = subprocess.run(
            [client, "version", "--format", "{{.Client.Version}}"],
            capture_output=True, text=True, timeout=30, check=False,
        ).stdout.strip()  # fmt: skip
        major = version.split(".", 1)[0]
        if major.isdigit() and int(major) < 23:
            return client
    return None


def _registry_has(ref: str) -> bool:
    """Whether a plain-HTTP registry (the local one) has `ref` (host:port/repo:tag)."""
    host, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    request = urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        method="HEAD",
        headers={
            "Accept": ", ".join(
                (
                    "application/vnd.oci.image.index.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.v2+json",
                )
            )
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - local
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def local_cluster_base() -> str | None:
    """The local cluster's Python base image, if its registry has it."""
    try:
        from eq_cluster.local.images import BASE_IMAGE
    except ImportError:
        return None
    return BASE_IMAGE if _registry_has(BASE_IMAGE) else None


def base_image() -> str | None:
    """The base to build from (None: the Dockerfile's default)."""
    return os.environ.get("EQ_BASE_IMAGE") or local_cluster_base()


@dataclass(frozen=True)
class Build:
    argv: list[str]
    env: dict[str, str]
    seconds: float


def build_command(
    tag: str,
    *,
    base: str | None,
    platforms: Sequence[str] = (),
    push: bool = False,
    build_args: Mapping[str, str] | None = None,
    builder: str | None = None,
    no_cache: bool = False,
    context: Path = ROOT,
) -> tuple[list[str], dict[str, str]]:
    """The docker command line (and environment) that builds the image from `context`
    (the repository, or a copy of the files the Dockerfile uses)."""
    env = dict(os.environ)
    if has_buildx():
        argv = ["docker", "buildx", "build"]
        builder = builder or os.environ.get("EQ_BUILDER")
        if builder:
            argv += ["--builder", builder]
        argv += ["--push"] if push else ["--load"]
    else:
        client = builtin_buildkit_client()
        if client is None:
            raise DockerUnavailable(
                "no BuildKit-capable docker client: install the buildx plugin "
                "(`inv cluster.up` does) or Debian's docker.io client"
            )
        if push or len(platforms) > 1:
            raise DockerUnavailable("a push or a multi-platform build needs docker buildx")
        argv = [client, "build"]
        env["DOCKER_BUILDKIT"] = "1"
    argv += ["-f", str(context / DOCKERFILE.relative_to(ROOT)), "-t", tag, "--progress", "plain"]
    if CA_BUNDLE.exists():
        argv += ["--secret", f"id=cacert,src={CA_BUNDLE}"]
    if base:
        argv += ["--build-arg", f"BASE_IMAGE={base}"]
    for key, value in (build_args or {}).items():
        argv += ["--build-arg", f"{key}={value}"]
    if platforms:
        argv += ["--platform", ",".join(platforms)]
    if no_cache:
        argv += ["--no-cache"]
    argv.append(str(context))
    return argv, env


def build(tag: str, *, base: str | None, timeout: float = 1800, **kwargs: object) -> Build:
    """Build the image; fail with the build's last output lines."""
    argv, env = build_command(tag, base=base, **kwargs)  # type: ignore[arg-type]
    started = time.monotonic()
    result = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise AssertionError(f"{' '.join(argv)} failed after {seconds:.0f} s:\n{output}")
    return Build(argv, env, seconds)


def inspect(ref: str) -> dict[str, object]:
    data = json.loads(docker("image", "inspect", ref).stdout)
    return dict(data[0])


def wait_for_health(url: str, deadline_s: float) -> float:
    """Seconds until GET `url` answers 200; raises TimeoutError after `deadline_s`."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{url} did not answer 200 within {deadline_s:.0f} s")


# The settings a container needs to start on its embedded defaults with a read-only root:
# the SQLite file goes to the tmpfs.
RUN_ENV = {"ENVIRONMENT": "dev", "DATABASE_URL": "sqlite+aiosqlite:////tmp/eq.db"}


def run_args(name: str, port: int) -> list[str]:
    """`docker run` options of the hardened container Kubernetes runs."""
    args = [
        "--name", name, "--read-only", "--tmpfs", "/tmp:rw,size=64m",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-p", f"127.0.0.1:{port}:8000",
    ]  # fmt: skip
    for key, value in RUN_ENV.items():
        args += ["-e", f"{key}={value}"]
    return args
