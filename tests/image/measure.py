"""Measure the backend image and record it in docs/benchmarks/image.json (`nox -s image_bench`).

- build time: cold (`--no-cache`), unchanged (all cached) and after a code-only change (a
  new module in eq_backend, in a copy of the build context, so the work tree is untouched);
- uncompressed size per platform (`docker image inspect`), the base's beside it (the image is
  FROM scratch: it holds part of the base's files, none of its layers);
- container start to the first `/health` 200, from `docker run -d` (median of several).

A measurement, not a test: it fails only when a build or a container fails. Quote the load
average it records beside the figures: on 2 busy cores every number moves.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imagetools import (
    ROOT,
    base_image,
    build,
    docker,
    has_buildx,
    inspect,
    require_docker,
    run_args,
    wait_for_health,
)

CONTEXT_FILES = (
    ".dockerignore",
    "docker/backend.Dockerfile",
    "docker/assemble_rootfs.py",
    "requirements/backend.txt",
    "requirements/tools.txt",
    "services/backend/alembic.ini",
    "services/backend/src/eq_backend",
)
NATIVE = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(platform.machine(), "")


def copy_context(dest: Path) -> None:
    for rel in CONTEXT_FILES:
        src, dst = ROOT / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dst)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(container_id: str) -> float | None:
    """CPU time the container has used (cgroup v1 cpuacct, or v2 cpu.stat), if readable."""
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage")
    if v1.exists():
        return int(v1.read_text()) / 1e9
    for v2 in (
        Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat"),
        Path(f"/sys/fs/cgroup/docker/{container_id}/cpu.stat"),
    ):
        if v2.exists():
            for line in v2.read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
    return None


def start_times(image: str, runs: int) -> tuple[list[float], list[float]]:
    """Wall seconds from `docker run -d` to /health 200, and the CPU seconds the container
    used until then (what start costs on an idle machine, whatever else runs now)."""
    walls, cpus = [], []
    for i in range(runs):
        name = f"eq-image-bench-{os.getpid()}-{i}"
        port = free_port()
        started = time.monotonic()
        container_id = docker("run", "-d", *run_args(name, port), image).stdout.strip()
        try:
            wait_for_health(f"http://127.0.0.1:{port}/health", 60)
            walls.append(round(time.monotonic() - started, 3))
            cpu = _cpu_seconds(container_id)
            if cpu is not None:
                cpus.append(round(cpu, 3))
        finally:
            docker("rm", "-f", name, check=False)
    return walls, cpus


def size_of(ref: str) -> int:
    return int(str(inspect(ref)["Size"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default=None, help="BASE_IMAGE (default: as the tests pick)")
    parser.add_argument(
        "--registry",
        default=os.environ.get("EQ_REGISTRY", ""),
        help="host:port of a registry for the two-platform build (e.g. 127.0.0.1:5000)",
    )
    parser.add_argument("--runs", type=int, default=7, help="container starts to time")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "image.json")
    args = parser.parse_args(argv)

    require_docker()
    base = args.base or base_image()
    tag = "eq-backend:bench"
    result: dict[str, object] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "load_average_before": os.getloadavg()},
        "base_image": base or "(Dockerfile default)",
        "builder": "docker buildx" if has_buildx() else "docker build (BuildKit built in)",
    }
    with tempfile.TemporaryDirectory(prefix="eq-image-bench-") as tmp:
        context = Path(tmp)
        copy_context(context)

        def timed(no_cache: bool = False) -> float:
            return round(build(tag, base=base, context=context, no_cache=no_cache).seconds, 2)

        print("cold build (--no-cache) ...", flush=True)
        cold = timed(no_cache=True)
        print("unchanged rebuild ...", flush=True)
        unchanged = timed()
        (context / "services/backend/src/eq_backend/_bench_marker.py").write_text(
            f"BUILT = {time.time()!r}\n"
        )
        print("code-only change rebuild ...", flush=True)
        code_change = timed()
        result["build_seconds"] = {
            "cold_no_cache": cold,
            "unchanged": unchanged,
            "code_only_change": code_change,
        }

        sizes: dict[str, dict[str, float]] = {}
        native_size = size_of(tag)
        history = docker("history", "--format", "{{.Size}}\t{{.CreatedBy}}", tag).stdout
        native: dict[str, float] = {"bytes": native_size, "mb": native_size / 1e6}
        sizes[f"{NATIVE or platform.machine()} (loaded)"] = native
        if base:
            try:
                base_size = size_of(base)
            except AssertionError:
                base_size = 0
            if base_size:
                native["base_mb"] = base_size / 1e6
        if args.registry and has_buildx():
            ref = f"{args.registry}/eq-backend:bench"
            print("two-platform build, pushed to the registry ...", flush=True)
            multi = build(
                ref, base=base, context=context, platforms=("linux/amd64", "linux/arm64"), push=True
            )
            result["two_platform_build_seconds"] = round(multi.seconds, 1)
            for plat in ("linux/amd64", "linux/arm64"):
                docker("pull", "--platform", plat, ref, timeout=600)
                size = size_of(ref)
                arch = str(inspect(ref)["Architecture"])
                sizes[plat] = {"bytes": size, "mb": size / 1e6, "architecture": arch}  # type: ignore[dict-item]
                docker("rmi", ref, check=False)
        result["uncompressed_size"] = sizes
        result["layers"] = [line for line in history.splitlines() if not line.startswith("0B")]

    print("container start to /health 200 ...", flush=True)
    walls, cpus = start_times(tag, args.runs)
    result["start_to_health_seconds"] = {"runs": walls, "median": statistics.median(walls)}
    if cpus:
        result["start_cpu_seconds"] = {"runs": cpus, "median": statistics.median(cpus)}
    result["machine"]["load_average_after"] = os.getloadavg()  # type: ignore[index]

    # One entry per builder and base, so runs on different setups sit side by side.
    recorded: dict[str, dict[str, object]] = {"runs": {}}
    if args.out.exists():
        previous = json.loads(args.out.read_text())
        if isinstance(previous.get("runs"), dict):
            recorded = previous
    recorded["runs"][f"{result['builder']} | {result['base_image']}"] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(recorded, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
