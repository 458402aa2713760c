"""Deploy benchmark on the local cluster: wall time of `inv deploy` of a new tag, of a
re-deploy of the same tag and of `inv rollback`, each beside the time Kubernetes made it wait
(migration Job, rollout, schema-check Job), so the tool's own overhead shows; and the time of
`inv --list`. Records docs/benchmarks/deploy.json and a section of docs/benchmarks.md.

    python -m benchmarks.deploy [--rounds 3] [--source-tag sha-...]

Needs a cluster with a registry (EQ_CLUSTER=local: `inv cluster.up`) and an image of the
backend in it (`--source-tag`, default sha-<HEAD>; build it with `inv build --push`). New tags
are derived from it in the registry (same layers), so no build is timed here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
JSON_OUT = ROOT / "docs" / "benchmarks" / "deploy.json"
MARKDOWN = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:deploy:begin -->", "<!-- bench:deploy:end -->"
STEP = re.compile(r"^\[\d+/\d+\] (\S+)\s+(ok|FAILED)\s+([\d.]+)s(?: \(waited ([\d.]+)s\))?")
KUBE_WAITS = {"migrate", "rollout", "schema", "downgrade", "rollback"}


def run_inv(args: list[str], env: dict[str, str]) -> tuple[float, dict[str, float], str]:
    """(wall seconds, {step: waited seconds}, output) of one `inv` command."""
    t0 = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(ROOT), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"inv {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    waits: dict[str, float] = {}
    for line in result.stdout.splitlines():
        match = STEP.match(line)
        if match and match.group(4):
            waits[match.group(1)] = float(match.group(4))
    return wall, waits, result.stdout


def measure(kind: str, wall: float, waits: dict[str, float]) -> dict[str, Any]:
    kube = sum(v for k, v in waits.items() if k in KUBE_WAITS)
    smoke = waits.get("smoke", 0.0)
    return {
        "kind": kind,
        "wall_s": round(wall, 2),
        "kubernetes_wait_s": round(kube, 2),
        "smoke_s": round(smoke, 2),
        "overhead_s": round(wall - kube - smoke, 2),
        "waits": {k: round(v, 2) for k, v in waits.items()},
    }


def child_env(**extra: str) -> dict[str, str]:
    """The environment of the timed commands: as a person's shell has it, bytecode caching on
    (some sandboxes set PYTHONDONTWRITEBYTECODE, which recompiles every import each run)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **extra}


def inv_list_seconds(runs: int = 7) -> float:
    times = []
    for _ in range(runs + 1):  # the first run only warms the bytecode cache
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "invoke", "--search-root", str(ROOT), "--list"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            env=child_env(),
        )
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source-tag", default="")
    args = parser.parse_args()

    from eq_cluster import select_provider
    from eq_cluster.derived_images import derive_image, has_image
    from eq_cluster.pod_services import Postgres, Redis

    cluster = select_provider()
    cluster.up()
    if not cluster.registry:
        raise SystemExit(f"the {cluster.name} cluster has no registry")
    source = (
        args.source_tag
        or "sha-"
        + subprocess.run(
            ["git", "rev-parse", "--short=7", "HEAD"],
            cwd=ROOT,
            text=True,
            capture_output=True,
            check=True,
        ).stdout.strip()
    )
    if not has_image(cluster.registry or "", "eq-backend", source):
        raise SystemExit(
            f"benchmarks.deploy: {cluster.registry}/eq-backend:{source} is not in the registry;"
            " push it first (./dev inv build --push) or pass --source-tag"
        )
    postgres = Postgres.start(cluster.host_address_for_pods)
    redis = Redis.start(cluster.host_address_for_pods)
    namespace = f"eq-bench-{uuid.uuid4().hex[:6]}"
    env_file = Path(tempfile.mkdtemp()) / ".env"
    env_file.write_text(
        f"IMAGE={cluster.registry}/eq-backend\nDATABASE_URL={postgres.url}\nREDIS_URL={redis.url}\n"
        f"SECRET_KEY={uuid.uuid4().hex}{uuid.uuid4().hex}\n"
    )
    env = child_env(KUBECONFIG=str(cluster.kubeconfig))
    where = ["--context", cluster.context, "--namespace", namespace, "--env-file", str(env_file)]
    results: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]
    try:

        def new_tag() -> str:
            tag = "sha-be" + uuid.uuid4().hex[:10]
            derive_image(cluster.registry or "", "eq-backend", source, tag, label=tag)
            return tag

        wall, waits, _ = run_inv(["deploy", "--tag", new_tag(), *where], env)
        results.append({**measure("first deploy (new namespace)", wall, waits), "round": 0})
        for round_ in range(1, args.rounds + 1):
            tag = new_tag()
            for kind, command in (
                ("deploy new tag", ["deploy", "--tag", tag]),
                ("re-deploy same tag", ["deploy", "--tag", tag]),
                ("rollback", ["rollback"]),
            ):
                wall, waits, _ = run_inv([*command, *where], env)
                results.append({**measure(kind, wall, waits), "round": round_})
                print(json.dumps(results[-1]))
    finally:
        subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(cluster.kubeconfig),
                "--context",
                cluster.context,
                "delete",
                "namespace",
                namespace,
                "--wait=false",
            ],
            check=False,
            capture_output=True,
        )
        postgres.stop()
        redis.stop()
        env_file.unlink(missing_ok=True)
        env_file.parent.rmdir()

    summary = {}
    for kind in ("deploy new tag", "re-deploy same tag", "rollback"):
        rows = [r for r in results if r["kind"] == kind]
        summary[kind] = {
            key: round(statistics.median(r[key] for r in rows), 2)
            for key in ("wall_s", "kubernetes_wait_s", "smoke_s", "overhead_s")
        }
    record = {
        "recorded_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "cluster": f"{cluster.name} ({cluster.context})",
        "rounds": args.rounds,
        # Other work on the machine slows Python start-up and imports, i.e. the overhead.
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "inv_list_s": round(inv_list_seconds(), 3),
        "median": summary,
        "runs": results,
    }
    JSON_OUT.parent.mkdir(parents=True, exist_ok=True)
    JSON_OUT.write_text(json.dumps(record, indent=2) + "\n")
    write_markdown(record)
    print(json.dumps({"median": summary, "inv_list_s": record["inv_list_s"]}, indent=2))


def write_markdown(record: dict[str, Any]) -> None:
    lines = [
        BEGIN,
        "## Deploy tool (`python -m benchmarks.deploy`)",
        "",
        f"{record['machine']}; {record['cluster']}; medians of {record['rounds']} rounds, "
        f"recorded {record['recorded_at']} with a 1-minute load average of "
        f"{record['load_average_1m'][0]}→{record['load_average_1m'][1]} from other work "
        "(raw runs: `docs/benchmarks/deploy.json`).",
        "Kubernetes wait = time spent waiting on the migration Job, the rollout and (rollback) the "
        "schema-check Job; smoke = the HTTP checks; overhead = the rest (CLI start, preflight with "
        "registry digest, applies, lock, history). Target: overhead ≤ 3 s.",
        "",
        "| command | wall | Kubernetes wait | smoke | tool overhead |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for kind, row in record["median"].items():
        command = "rollback" if kind == "rollback" else "deploy"
        lines.append(
            f"| `inv {command}` — {kind} | {row['wall_s']:.2f} s "
            f"| {row['kubernetes_wait_s']:.2f} s | {row['smoke_s']:.2f} s "
            f"| {row['overhead_s']:.2f} s |"
        )
    lines += ["", f"`inv --list`: {record['inv_list_s']:.3f} s (median of 7; target ≤ 0.5 s).", END]
    section = "\n".join(lines)
    text = MARKDOWN.read_text() if MARKDOWN.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    MARKDOWN.write_text(text)


if __name__ == "__main__":
    main()
