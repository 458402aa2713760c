"""The backend image runs like Kubernetes runs it, and carries nothing it should not."""

from __future__ import annotations

import json
import os
import socket
import tarfile
import time
from pathlib import Path

import pytest
from conftest import REVISION
from imagetools import CA_BUNDLE, UID, docker, inspect, run_args, wait_for_health


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_python(image: str, code: str) -> str:
    """Run `code` with the image's python, as the image's user, read-only root."""
    result = docker(
        "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--entrypoint", "python",
        image, "-c", code,
    )  # fmt: skip
    return result.stdout


def test_runs_as_a_fixed_non_root_uid(image: str) -> None:
    config = inspect(image)["Config"]
    assert isinstance(config, dict)
    assert config["User"] == f"{UID}:{UID}"
    ids = run_python(
        image,
        "import grp, os, pwd; "
        "print(os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name, "
        "grp.getgrgid(os.getgid()).gr_name)",
    )
    assert ids.split() == [str(UID), str(UID), "eq", "eq"]


def test_metadata(image: str) -> None:
    config = inspect(image)["Config"]
    assert isinstance(config, dict)
    assert "8000/tcp" in config["ExposedPorts"]
    all_interfaces = "0.0.0.0"  # noqa: S104 - the container listens on its own interfaces
    assert config["Cmd"] == [
        "/opt/venv/bin/python", "-m", "eq_backend", "run",
        "--host", all_interfaces, "--port", "8000",
    ]  # fmt: skip
    assert not config.get("Entrypoint")  # CMD runs python as PID 1: signals reach it
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "eq-backend"
    for key in ("version", "revision", "created", "source", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    if not os.environ.get("EQ_IMAGE"):
        assert labels["org.opencontainers.image.revision"] == REVISION


def test_serves_health_with_a_read_only_root_and_stops_gracefully_on_sigterm(
    image: str, container_name: str
) -> None:
    port = free_port()
    started = time.monotonic()
    docker("run", "-d", *run_args(container_name, port), image)
    try:
        seconds = wait_for_health(f"http://127.0.0.1:{port}/health", 30)
    except TimeoutError:
        logs = docker("logs", container_name, check=False)
        pytest.fail(f"/health never answered:\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}")
    assert time.monotonic() - started < 30
    print(f"container start to /health 200: {seconds:.2f} s")  # recorded by measure.py

    stop_started = time.monotonic()
    docker("stop", "--time", "20", container_name)
    stopped_in = time.monotonic() - stop_started
    state = json.loads(docker("inspect", container_name).stdout)[0]["State"]
    logs = docker("logs", container_name).stderr + docker("logs", container_name).stdout
    # PID 1 handled SIGTERM itself: a clean exit, well before docker's SIGKILL at 20 s.
    assert state["ExitCode"] == 0, logs[-2000:]
    assert stopped_in < 5, f"stop took {stopped_in:.1f} s"
    assert "Application shutdown complete" in logs


def test_migrations_run_from_the_same_image(image: str) -> None:
    env = ["-e", "ENVIRONMENT=dev", "-e", "DATABASE_URL=sqlite+aiosqlite:////tmp/eq.db"]
    common = ["run", "--rm", "--read-only", "--tmpfs", "/tmp", *env, image]
    # No shell in the image: python runs the two alembic commands in one container (the
    # database is on that container's tmpfs).
    alembic = docker(
        *common, "python", "-c",
        "import subprocess; "
        "subprocess.run(['alembic', 'upgrade', 'head'], check=True); "
        "subprocess.run(['alembic', 'current'], check=True)",
    )  # fmt: skip
    assert "(head)" in alembic.stdout + alembic.stderr
    migrate = docker(*common, "python", "-m", "eq_backend", "migrate")
    assert "alembic head:" in migrate.stdout


def test_nothing_inside_that_should_not_be(image: str) -> None:
    """The image is FROM scratch plus what python needs: no shell, no package manager, no perl,
    no pip, no compiler, no build or cache directory, no setuid file. The only programs are
    the interpreter (and its links) and the venv's entry points."""
    report = json.loads(
        run_python(
            image,
            r"""
import importlib.util, json, os, shutil, stat, sys
everywhere = "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
found = {}
found["shells"] = [s for s in ("sh", "bash", "dash", "ash", "zsh", "busybox", "toybox")
                   if shutil.which(s, path=everywhere)]
found["package_managers"] = [t for t in ("apt", "apt-get", "dpkg", "apk", "microdnf", "yum")
                             if shutil.which(t, path=everywhere)]
found["compilers"] = [c for c in ("gcc", "cc", "c++", "g++", "clang", "ld", "as", "make",
                                  "strip", "perl", "cpp") if shutil.which(c, path=everywhere)]
found["tools"] = [t for t in ("uv", "pip", "pip3", "poetry", "pytest", "mypy", "ruff", "black",
                              "litestar", "env", "ls", "cat", "id", "ldd", "ldconfig")
                  if shutil.which(t, path=everywhere)]
found["modules"] = [m for m in ("pip", "uv", "pytest", "mypy", "ruff", "setuptools_scm", "nox",
                                "invoke", "kubernetes", "docker", "eq_deploy", "setuptools",
                                "ensurepip", "tkinter", "idlelib", "lib2to3", "rich", "faker")
                    if importlib.util.find_spec(m)]
bad_names = {".env", ".git", ".venv", "tests", ".pytest_cache", ".mypy_cache", ".ruff_cache",
             ".cache", "node_modules", "noxfile.py", "uv.lock"}
bad_dirs = {"dpkg", "apt", "perl", "perl5", "perl-base", "doc", "man", "info"}
found["files"], found["programs"], found["setuid"], found["dirs"] = [], [], [], []
for dirpath, dirnames, filenames in os.walk("/"):
    if dirpath in ("/proc", "/sys", "/dev"):
        dirnames.clear()
        continue
    for name in dirnames + filenames:
        path = os.path.join(dirpath, name)
        if name in bad_names and not dirpath.startswith("/opt/venv/lib"):
            found["files"].append(path)
        if name in bad_dirs and os.path.isdir(path) and not dirpath.startswith("/opt/venv/lib"):
            found["dirs"].append(path)
    for name in filenames:
        path = os.path.join(dirpath, name)
        if os.path.basename(dirpath) in ("bin", "sbin") and not (
            dirpath == "/opt/venv/bin" or name.startswith("python")
        ):
            found["programs"].append(path)
        mode = os.lstat(path).st_mode
        if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
            found["setuid"].append(path)
found["build_dirs"] = [p for p in ("/build", "/opt/uv", "/root/.cache", "/rootfs")
                       if os.path.exists(p)]
found["dont_write_bytecode"] = bool(sys.flags.dont_write_bytecode)
found["prefix"] = sys.prefix
print(json.dumps(found))
""",
        )
    )
    assert report["shells"] == []
    assert report["package_managers"] == []
    assert report["compilers"] == []
    assert report["tools"] == []
    assert report["modules"] == []
    assert report["programs"] == []
    assert report["setuid"] == []
    assert report["dirs"] == []
    assert report["files"] == []
    assert report["build_dirs"] == []
    assert report["dont_write_bytecode"] is True
    assert report["prefix"] == "/opt/venv"


def test_bytecode_is_compiled_at_build_time(image: str) -> None:
    """The root filesystem is read-only: every module of the app has its .pyc already."""
    missing = run_python(
        image,
        r"""
import importlib.util, pathlib
missing = []
for py in pathlib.Path("/app/eq_backend").rglob("*.py"):
    if not pathlib.Path(importlib.util.cache_from_source(str(py))).exists():
        missing.append(str(py))
print("\n".join(missing))
""",
    )
    assert missing.strip() == ""


def test_every_extension_module_imports(image: str) -> None:
    """Debug info was stripped from the wheels' extension modules: all still load."""
    out = run_python(
        image,
        r"""
import importlib, pathlib, sysconfig
import psycopg  # psycopg_binary refuses to load before it
site = pathlib.Path(sysconfig.get_path("platlib"))
failed, count = [], 0
suffix = sysconfig.get_config_var("EXT_SUFFIX")
for so in site.rglob("*.so"):
    rel = so.relative_to(site)
    if ".libs" in rel.parts[0] or not (so.name.endswith(suffix) or so.name.endswith(".abi3.so")):
        continue
    name = ".".join(rel.parts[:-1] + (so.name.split(".")[0],))
    if "test" in name:
        continue
    count += 1
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {exc!r}")
print(count)
print("\n".join(failed))
""",
    )
    count, *failed = out.strip().splitlines()
    assert int(count) >= 10
    assert failed == []


def _layer_paths(saved: Path) -> list[Path]:
    manifest = json.loads((saved / "manifest.json").read_text())
    return [saved / layer for layer in manifest[0]["Layers"]]


def _pem_blocks(data: bytes) -> set[bytes]:
    blocks, start = set(), 0
    while (begin := data.find(b"-----BEGIN CERTIFICATE-----", start)) != -1:
        end = data.index(b"-----END CERTIFICATE-----", begin) + len(b"-----END CERTIFICATE-----")
        blocks.add(data[begin:end])
        start = end
    return blocks


def _base_of(image: str) -> str:
    labels = inspect(image)["Config"]["Labels"]  # type: ignore[index]
    return str(labels.get("org.opencontainers.image.base.name") or "python:3.11-slim-bookworm")


def _base_in_docker(base: str) -> dict[str, object]:
    """The base image's config (pulled into the engine first when a remote builder built)."""
    if docker("image", "inspect", base, check=False).returncode != 0:
        docker("pull", base, timeout=600)
    return inspect(base)


def test_layers_are_ours_only(image: str) -> None:
    """FROM scratch: none of the base's layers is in the image, which is three layers (the
    assembled root filesystem, the venv, the app) and at most an empty one from WORKDIR."""
    layers = inspect(image)["RootFS"]["Layers"]  # type: ignore[index]
    base_layers = _base_in_docker(_base_of(image))["RootFS"]["Layers"]  # type: ignore[index]
    assert not set(layers) & set(base_layers)
    assert 3 <= len(layers) <= 4, layers
    history = docker("history", "--format", "{{.Size}}\t{{.CreatedBy}}", image).stdout
    print(f"image size {int(str(inspect(image)['Size'])) / 1e6:.1f} MB; layers:\n{history}")


def test_no_build_secret_in_any_layer(image: str, saved_layers: Path) -> None:
    """The CA bundle was a BuildKit secret: no layer holds this machine's bundle (unless it is
    byte for byte the base's own, which the image legitimately copies), or a certificate that
    only this machine's bundle has (one that neither the base's bundle nor the pinned certifi
    ships), or a /run/secrets path. The image is FROM scratch, so every layer is checked."""
    import certifi  # the same pinned version as in the image (requirements/*.txt)

    base = _base_of(image)
    base_bundle = docker(
        "run", "--rm", "--entrypoint", "cat", base, "/etc/ssl/certs/ca-certificates.crt",
        timeout=600, check=False,
    ).stdout.encode()  # fmt: skip
    assert _pem_blocks(base_bundle), f"no CA bundle read from {base}"
    public = _pem_blocks(base_bundle) | _pem_blocks(Path(certifi.where()).read_bytes())
    host_bundle = CA_BUNDLE.read_bytes() if CA_BUNDLE.exists() else b""
    machine_only = _pem_blocks(host_bundle) - public
    layers = _layer_paths(saved_layers)
    assert layers, "docker save listed no layer"
    offenders: list[str] = []
    bundles = 0
    for layer in layers:
        with tarfile.open(layer) as tar:
            for member in tar:
                name = member.name.lstrip("./")
                if name.startswith("run/secrets/") or name.rsplit("/", 1)[-1] == ".env":
                    offenders.append(f"{layer.parent.name}: {name}")
                if not member.isfile() or member.size > 64 * 1024 * 1024:
                    continue
                extracted = tar.extractfile(member)
                data = extracted.read() if extracted else b""
                if data == base_bundle:
                    bundles += 1
                elif host_bundle and data == host_bundle:
                    offenders.append(f"{name}: this machine's CA bundle")
                elif b"-----BEGIN CERTIFICATE-----" in data and any(
                    block in data for block in machine_only
                ):
                    offenders.append(f"{name}: a certificate only this machine's bundle has")
    assert offenders == []
    assert bundles == 1, "the image should carry the base's CA bundle, once"
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "BEGIN CERTIFICATE" not in history
    assert str(CA_BUNDLE) not in history


def test_context_is_small() -> None:
    """.dockerignore keeps the build context to the requirement files and the package."""
    from imagetools import ROOT

    patterns = (ROOT / ".dockerignore").read_text().splitlines()
    assert patterns[[p.strip() for p in patterns].index("*")] == "*"
    allowed = [p[1:] for p in patterns if p.startswith("!")]
    size = 0
    for entry in allowed:
        path = ROOT / entry
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        size += sum(
            f.stat().st_size for f in files if "__pycache__" not in f.parts and f.suffix != ".pyc"
        )
    assert size < 2 * 1024 * 1024, f"build context {size} bytes"
