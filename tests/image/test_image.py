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
    assert docker("run", "--rm", image, "id", "-u").stdout.strip() == str(UID)
    assert docker("run", "--rm", image, "id", "-g").stdout.strip() == str(UID)


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
    alembic = docker(*common, "sh", "-c", "alembic upgrade head && alembic current")
    assert "(head)" in alembic.stdout + alembic.stderr
    migrate = docker(*common, "python", "-m", "eq_backend", "migrate")
    assert "alembic head:" in migrate.stdout


def test_nothing_inside_that_should_not_be(image: str) -> None:
    report = json.loads(
        run_python(
            image,
            r"""
import json, os, shutil, sys, sysconfig
found = {}
found["compilers"] = [c for c in ("gcc", "cc", "c++", "g++", "clang", "ld", "as", "make")
                      if shutil.which(c)]
found["tools"] = [t for t in ("uv", "pip", "pip3", "poetry", "pytest", "mypy", "ruff", "black")
                  if shutil.which(t)]
import importlib.util
found["modules"] = [m for m in ("pip", "uv", "pytest", "mypy", "ruff", "setuptools_scm", "nox",
                                "invoke", "kubernetes", "docker", "eq_deploy")
                    if importlib.util.find_spec(m)]
bad_names = {".env", ".git", ".venv", "tests", ".pytest_cache", ".mypy_cache", ".ruff_cache",
             ".cache", "node_modules", "noxfile.py", "uv.lock"}
found["files"] = []
for top in ("/app", "/opt", "/root", "/home", "/tmp", "/nonexistent", "/build", "/run/secrets"):
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            if name in bad_names and not dirpath.startswith("/opt/venv/lib"):
                found["files"].append(os.path.join(dirpath, name))
found["build_dirs"] = [p for p in ("/build", "/opt/uv", "/root/.cache") if os.path.exists(p)]
found["dont_write_bytecode"] = bool(sys.flags.dont_write_bytecode)
found["prefix"] = sys.prefix
print(json.dumps(found))
""",
        )
    )
    assert report["compilers"] == []
    assert report["tools"] == []
    assert report["modules"] == []
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


def test_no_build_secret_in_any_layer(image: str, saved_layers: Path) -> None:
    """The CA bundle was a BuildKit secret: no layer the Dockerfile adds on top of the base
    holds this machine's bundle, or a certificate that only this machine's bundle has (one
    that neither the base's bundle nor the pinned certifi ships), or a /run/secrets path."""
    import certifi  # the same pinned version as in the image (requirements/*.txt)

    base = _base_of(image)
    base_bundle = docker(
        "run", "--rm", "--entrypoint", "cat", base, "/etc/ssl/certs/ca-certificates.crt",
        timeout=600, check=False,
    ).stdout.encode()  # fmt: skip
    public = _pem_blocks(base_bundle) | _pem_blocks(Path(certifi.where()).read_bytes())
    host_bundle = CA_BUNDLE.read_bytes() if CA_BUNDLE.exists() else b""
    machine_only = _pem_blocks(host_bundle) - public
    base_layers = len(inspect(base)["RootFS"]["Layers"])  # type: ignore[index]
    ours = _layer_paths(saved_layers)[base_layers:]
    assert ours, "the image adds no layer to its base?"
    offenders: list[str] = []
    for layer in ours:
        with tarfile.open(layer) as tar:
            for member in tar:
                name = member.name.lstrip("./")
                if name.startswith("run/secrets/") or name.rsplit("/", 1)[-1] == ".env":
                    offenders.append(f"{layer.parent.name}: {name}")
                if not member.isfile() or member.size > 64 * 1024 * 1024:
                    continue
                extracted = tar.extractfile(member)
                data = extracted.read() if extracted else b""
                if host_bundle and data == host_bundle and data != base_bundle:
                    offenders.append(f"{name}: this machine's CA bundle")
                elif b"-----BEGIN CERTIFICATE-----" in data and any(
                    block in data for block in machine_only
                ):
                    offenders.append(f"{name}: a certificate only this machine's bundle has")
    assert offenders == []
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
