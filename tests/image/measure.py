"""Measure the backend image and record it in docs/benchmarks/image.json (`nox -s image_bench`).

- build time: cold (`--no-cache`), unchanged (all cached) and after a code-only change (a
  new module in eq_backend, in a copy of the build context, so the work tree is untouched);
- uncompressed size per platform (`docker image inspect`), and how much of it the base is;
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


def start_times(image: str, runs: int) -> list[float]:
    times = []
    for i in range(runs):
        name = f"eq-image-bench-{os.getpid()}-{i}"
        port = free_port()
        started = time.monotonic()
        docker("run", "-d", *run_args(name, port), image)
        try:
            wait_for_health(f"http://127.0.0.1:{port}/health", 60)
            times.append(round(time.monotonic() - started, 3))
        finally:
            docker("rm", "-f", name, check=False)
    return times


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
        sizes[NATIVE or platform.machine()] = {"bytes": native_size, "mb": native_size / 1e6}
        if base:
            try:
                base_size = size_of(base)
            except AssertionError:
                base_size = 0
            if base_size:
                sizes[NATIVE]["base_mb"] = base_size / 1e6
                sizes[NATIVE]["added_mb"] = (native_size - base_size) / 1e6
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
    starts = start_times(tag, args.runs)
    result["start_to_health_seconds"] = {"runs": starts, "median": statistics.median(starts)}
    result["machine"]["load_average_after"] = os.getloadavg()  # type: ignore[index]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
