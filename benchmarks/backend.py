"""Benchmark the backend: `python -m benchmarks.backend` (what `inv bench` runs).

One uvicorn worker (`python -m eq_backend run`, ENVIRONMENT=production, JSON logs at the
default LOG_LEVEL=INFO) against a throwaway PostgreSQL and Redis, seeded with a realistic
data set; wrk drives it from another process at 32 connections. A bare ASGI app on the
same uvicorn config, in the same run, is the ceiling. Records, never asserts: writes
docs/benchmarks/backend.json and regenerates the backend section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import jwt
from eq_cluster.services import PostgresServer, RedisServer, free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent

JSON_OUT = ROOT / "docs" / "benchmarks" / "backend.json"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:backend:begin -->", "<!-- bench:backend:end -->"
SECRET = "bench-secret-key-0123456789-0123456789-0123456789"  # noqa: S105 - throwaway

TARGETS = {
    "health_vs_bare": 0.60,
    "topics_rps": 3000.0,
    "feed_rps": 1000.0,
    "rss_mb": 150.0,
}
SLICES = 5  # per round, alternating bare ASGI and /health
DATA = {"users": 50, "situations": 2500, "comments_per_situation": 3, "max_reactions": 6}


# Placement: the servers on one CPU, wrk on the other. Left to the scheduler, wrk's threads
# and the server trade places between runs and the same server measured anywhere from 11k
# to 22k req/s back to back here; pinned, both sides of a comparison get the same CPUs.
# PostgreSQL and Redis are left unpinned.
PINNED = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
SERVER_CPU, WRK_CPU = "1", "0"


def _on_cpu(cpu: str, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *cmd] if PINNED else cmd


def _wrk(
    url: str,
    seconds: float,
    headers: dict[str, str],
    threads: int,
    conns: int,
    script: Path | None = None,
) -> dict[str, Any]:
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds:g}s", "--latency", "--timeout", "5s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run(
        _on_cpu(WRK_CPU, [*cmd, url]), capture_output=True, text=True, check=True
    ).stdout
    return parse_wrk(out)


def _merge_slices(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from consecutive short runs: req/s over their total time, the median of
    their latency percentiles, requests and errors summed."""
    seconds = sum(s["requests"] / s["rps"] for s in slices if s["rps"])
    out: dict[str, Any] = {"rps": round(sum(s["requests"] for s in slices) / seconds, 1)}
    for key in ("p50_ms", "p90_ms", "p99_ms"):
        out[key] = round(statistics.median(s[key] for s in slices), 3)
    out["requests"] = sum(s["requests"] for s in slices)
    out["non_2xx"] = sum(s["non_2xx"] for s in slices)
    out["socket_errors"] = "; ".join(s["socket_errors"] for s in slices if s["socket_errors"])
    return out


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    assert m, text
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    """req/s, p50/p90/p99 in ms, request count and errors from `wrk --latency` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {int(p): _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": round(rps, 1),
        "p50_ms": round(pct[50], 3),
        "p90_ms": round(pct[90], 3),
        "p99_ms": round(pct[99], 3),
        "requests": total,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sock.group(1).strip() if sock else "",
    }


def _median(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-field median over rounds (errors summed)."""
    out: dict[str, Any] = {}
    for key in ("rps", "p50_ms", "p90_ms", "p99_ms"):
        out[key] = round(statistics.median(r[key] for r in rows), 3)
    out["requests"] = sum(r["requests"] for r in rows)
    out["non_2xx"] = sum(r["non_2xx"] for r in rows)
    out["socket_errors"] = "; ".join(r["socket_errors"] for r in rows if r["socket_errors"])
    return out


def _seed(pg: PostgresServer, db: str) -> dict[str, int]:
    with pg.connect(db) as conn:
        n_users, n_sit = DATA["users"], DATA["situations"]
        conn.execute(
            "INSERT INTO users (google_id, email, name, picture) "
            "SELECT 'bench-' || g, 'bench' || g || '@example.test', 'Bench User ' || g, "
            "'https://example.test/u' || g || '.png' FROM generate_series(1, %s) g",
            (n_users,),
        )
        users = [r[0] for r in conn.execute("SELECT id FROM users ORDER BY id").fetchall()]
        topics = [r[0] for r in conn.execute("SELECT id FROM topics ORDER BY id").fetchall()]
        conn.execute(
            "INSERT INTO situations (topic_id, user_id, context, question, image_url, "
            "is_contributed, created_at) "
            "SELECT CASE WHEN g %% 7 = 0 THEN NULL ELSE (%s::int[])[1 + g %% %s] END, "
            "(%s::int[])[1 + g %% %s], "
            "'Context of situation ' || g || ': ' || repeat('a realistic sentence. ', 8), "
            "'What would you do in situation ' || g || '?', "
            "CASE WHEN g %% 5 = 0 THEN 'https://img.example.test/' || g || '.jpg' END, "
            "g %% 3 = 0, now() - g * interval '1 minute' FROM generate_series(1, %s) g",
            (topics, len(topics), users, len(users), n_sit),
        )
        conn.execute(
            "INSERT INTO comments (situation_id, user_id, content, sentiment_label) "
            "SELECT s.id, (%s::int[])[1 + (s.id + k) %% %s], 'Comment ' || k || ' hôm nay vui', "
            "'positive' FROM situations s, generate_series(1, %s) k",
            (users, len(users), DATA["comments_per_situation"]),
        )
        conn.execute(
            "INSERT INTO reactions (situation_id, user_id, reaction_type) "
            "SELECT s.id, (%s::int[])[1 + (s.id + k) %% %s], "
            "CASE WHEN k %% 3 = 0 THEN 'downvote' ELSE 'upvote' END "
            "FROM situations s, generate_series(0, %s - 1) k WHERE k <= s.id %% %s",
            (users, len(users), DATA["max_reactions"], DATA["max_reactions"]),
        )
        conn.execute("ANALYZE")
        counts = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]  # noqa: S608
            for t in ("users", "topics", "situations", "comments", "reactions")
        }
        (email,) = conn.execute(
            "SELECT email FROM users WHERE email LIKE 'bench%%' ORDER BY id LIMIT 1"
        ).fetchone()  # type: ignore[misc]
    counts["_email"] = email  # type: ignore[assignment]
    return counts


def _feed_script(path: Path, now: int) -> Path:
    """A wrk script that spreads feed requests over every seeded user and pages 1-5, so the
    figure is not that of one user reading one page (which the app's request coalescing
    would serve almost for free)."""
    cookies = [
        "access_token="
        + jwt.encode(
            {"sub": f"bench{g}@example.test", "iat": now, "exp": now + 3600},
            SECRET,
            algorithm="HS256",
        )
        for g in range(1, DATA["users"] + 1)
    ]
    path.write_text(
        "local cookies = {" + ", ".join(f'"{c}"' for c in cookies) + "}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        "  local page = 1 + math.floor(n / #cookies) % 5\n"
        '  return wrk.format("GET", "/api/v1/situations/feed?limit=10&page=" .. page,\n'
        '    {["Cookie"] = cookies[1 + n % #cookies]})\n'
        "end\n"
    )
    return path


def _rss_mb(pid: int) -> float:
    # With one worker, uvicorn serves in the process it was started as.
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


def _start(
    cmd: list[str], env: dict[str, str], cwd: Path, log: Path, port: int
) -> subprocess.Popen:
    proc = subprocess.Popen(
        _on_cpu(SERVER_CPU, cmd),
        env=env,
        cwd=str(cwd),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
    except TimeoutError:
        proc.kill()
        raise SystemExit(
            f"server did not start: {' '.join(cmd)}\n{log.read_text()[-3000:]}"
        ) from None
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in (
        "litestar",
        "uvicorn",
        "uvloop",
        "httptools",
        "sqlalchemy",
        "psycopg",
        "msgspec",
        "redis",
        "eq-backend",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    for name, cmd in (
        (
            "postgres",
            [shutil.which("postgres") or "/usr/lib/postgresql/15/bin/postgres", "--version"],
        ),
        ("redis_server", ["redis-server", "--version"]),
        ("wrk", ["wrk", "--version"]),
    ):
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, check=False)
            out[name] = (res.stdout or res.stderr).splitlines()[0].strip()
        except OSError:
            out[name] = "absent"
    return out


def _machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    os_name = ""
    if Path("/etc/os-release").exists():
        m = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text())
        os_name = m.group(1) if m else ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": os_name,
    }


def _git_sha() -> str:
    res = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return res.stdout.strip()


def run(seconds: int, warmup: int, threads: int, conns: int, rounds: int) -> dict[str, Any]:
    for tool in ("wrk",):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install {tool}")
    work = Path(tempfile.mkdtemp(prefix="eq-bench-"))
    load_before = [round(x, 2) for x in os.getloadavg()]
    pg = PostgresServer.start(stat_statements=False)
    redis = RedisServer.from_env_or_start()
    procs: list[subprocess.Popen] = []
    try:
        db_url = pg.create_database("eq_bench")
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        env = {
            **base,
            "DATABASE_URL": db_url,
            "REDIS_URL": redis.url,
            "SECRET_KEY": SECRET,
            "ENVIRONMENT": "production",
            # Production needs it (the OAuth redirect_uri); the bench never signs in.
            "PUBLIC_BASE_URL": "http://127.0.0.1",
            # Several servers run at once: none takes the production metrics port.
            "METRICS_PORT": "0",
            "LOG_LEVEL": "INFO",
            "FRONTEND_URL": "http://localhost:3000/",
            "CORS_ORIGINS": '["http://localhost:3000"]',
            "OPENAI_API_KEY": "unused",
            "GOOGLE_CLIENT_ID": "unused",
            "GOOGLE_CLIENT_SECRET": "unused",
        }
        for cmd in ("migrate", "seed"):
            subprocess.run(
                [sys.executable, "-m", "eq_backend", cmd],
                env=env,
                cwd=work,
                check=True,
                capture_output=True,
            )
        counts = _seed(pg, "eq_bench")
        email = counts.pop("_email")
        now = int(time.time())
        token = jwt.encode({"sub": email, "iat": now, "exp": now + 3600}, SECRET, algorithm="HS256")
        feed_script = _feed_script(work / "feed.lua", now)
        print(f"data: {counts}", flush=True)

        # Both servers run side by side; every round measures the four targets back to back,
        # so a burst of other work on the machine hits one round, not one endpoint.
        port = free_port()
        bare = _start(
            [sys.executable, "-m", "benchmarks.bare_asgi", "127.0.0.1", str(port)],
            {**base, "PYTHONPATH": str(ROOT)},
            ROOT,
            work / "bare.log",
            port,
        )
        procs.append(bare)
        bare_url = f"http://127.0.0.1:{port}/"
        port = free_port()
        app = _start(
            [sys.executable, "-m", "eq_backend", "run", "--host", "127.0.0.1", "--port", str(port)],
            env,
            work,
            work / "app.log",
            port,
        )
        procs.append(app)
        base_url = f"http://127.0.0.1:{port}"
        # The same app with READ_CACHE=false: what every read costs when it is a miss.
        port = free_port()
        uncached = _start(
            [sys.executable, "-m", "eq_backend", "run", "--host", "127.0.0.1", "--port", str(port)],
            {**env, "READ_CACHE": "false"},
            work,
            work / "app-uncached.log",
            port,
        )
        procs.append(uncached)
        uncached_url = f"http://127.0.0.1:{port}"
        cookie = {"Cookie": f"access_token={token}"}
        endpoints: dict[str, tuple[str, dict[str, str], Path | None]] = {
            "bare_asgi": (bare_url, {}, None),
            "health": (base_url + "/health", {}, None),
            "topics": (base_url + "/api/v1/topics/", {}, None),
            "feed": (base_url + "/api/v1/situations/feed?limit=10", cookie, feed_script),
            "topics_uncached": (uncached_url + "/api/v1/topics/", {}, None),
            "feed_uncached": (
                uncached_url + "/api/v1/situations/feed?limit=10",
                cookie,
                feed_script,
            ),
        }
        for name, (url, headers, script) in endpoints.items():
            probe = httpx.get(url, headers=headers, timeout=10)
            if probe.status_code != 200:
                raise SystemExit(f"{url} answered {probe.status_code}: {probe.text[:300]}")
            if name == "feed":
                assert len(probe.json()["data"]["items"]) == 10, probe.text[:300]
            _wrk(url, warmup, headers, threads, conns, script)
        per_round: dict[str, list[dict[str, Any]]] = {name: [] for name in endpoints}
        for r in range(rounds):
            # The ceiling and /health alternate in short slices: a drift in what the machine
            # gives (other tenants, clocks) then hits both sides of the ratio alike.
            paired: dict[str, list[dict[str, Any]]] = {"bare_asgi": [], "health": []}
            for _ in range(SLICES):
                for name, slices in paired.items():
                    url, headers, script = endpoints[name]
                    slices.append(_wrk(url, seconds / SLICES, headers, threads, conns, script))
            for name, slices in paired.items():
                per_round[name].append(_merge_slices(slices))
            for name in ("topics", "feed", "topics_uncached", "feed_uncached"):
                url, headers, script = endpoints[name]
                per_round[name].append(_wrk(url, seconds, headers, threads, conns, script))
            for name in endpoints:
                print(f"round {r + 1} {name}: {per_round[name][-1]}", flush=True)
        rss = _rss_mb(app.pid)
    finally:
        for p in procs:
            _stop(p)
        redis.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    results = {name: _median(rows) for name, rows in per_round.items()}
    ratio = statistics.median(
        h["rps"] / b["rps"]
        for h, b in zip(per_round["health"], per_round["bare_asgi"], strict=True)
    )
    measured = {
        "health_vs_bare": round(ratio, 3),
        "topics_rps": results["topics"]["rps"],
        "feed_rps": results["feed"]["rps"],
        "rss_mb": rss,
    }
    targets = {
        k: {
            "target": TARGETS[k],
            "measured": measured[k],
            "met": measured[k] <= TARGETS[k] if k == "rss_mb" else measured[k] >= TARGETS[k],
        }
        for k in TARGETS
    }
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_sha": _git_sha(),
        "machine": _machine(),
        "versions": _versions(),
        "config": {
            "server": "python -m eq_backend run (uvicorn, 1 worker, uvloop, httptools)",
            "environment": "production",
            "log_level": "INFO (the default; JSON lines to a file)",
            "load": f"wrk -t{threads} -c{conns} -d{seconds}s --latency, after a {warmup}s "
            f"warm-up; {rounds} rounds over the endpoints, medians reported; bare ASGI "
            f"and /health as {SLICES} alternating slices of {seconds / SLICES:g}s each per round"
            + (
                f"; servers pinned to CPU {SERVER_CPU}, wrk to CPU {WRK_CPU} (taskset)"
                if PINNED
                else ""
            ),
            "feed_auth": "access_token cookie of each of the seeded users in turn, pages 1-5",
            "data": counts,
        },
        "results": results,
        "rounds": per_round,
        "rss_mb_after_run": rss,
        # Other work on the machine competes for the same 2 cores: say how busy it was.
        "load_average_1_5_15": {
            "before": load_before,
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "targets": targets,
    }


def render_section(report: dict[str, Any]) -> str:
    r, t = report["results"], report["targets"]
    m, v = report["machine"], report["versions"]
    load = report["load_average_1_5_15"]
    rows = [
        ("bare ASGI (ceiling)", "GET /", r["bare_asgi"]),
        ("health", "GET /health", r["health"]),
        ("topics", "GET /api/v1/topics/", r["topics"]),
        ("feed", "GET /api/v1/situations/feed?limit=10&page=1..5 (50 users' cookies)", r["feed"]),
        (
            "topics, READ_CACHE=false (every read a miss)",
            "GET /api/v1/topics/",
            r["topics_uncached"],
        ),
        (
            "feed, READ_CACHE=false (every read a miss)",
            "GET /api/v1/situations/feed?limit=10&page=1..5 (50 users' cookies)",
            r["feed_uncached"],
        ),
    ]
    lines = [
        BEGIN,
        "## Backend",
        "",
        f"Generated by `python -m benchmarks.backend` on {report['date']} (commit "
        f"`{report['git_sha']}`); raw figures in `docs/benchmarks/backend.json`.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os']}. "
        f"Python {v['python']}, Litestar {v['litestar']}, uvicorn {v['uvicorn']}, "
        f"{v['postgres']}, {v['redis_server'].split(' sha=')[0]}, {v['wrk'].split(' [')[0]}.",
        "",
        f"Setup: {report['config']['server']}, ENVIRONMENT=production, LOG_LEVEL "
        f"{report['config']['log_level']}; {report['config']['load']}; wrk, the app, PostgreSQL "
        "and Redis share the same cores (load average before/after the run: "
        f"{load['before'][0]} / {load['after'][0]}"
        "). Data: " + ", ".join(f"{n:,} {k}" for k, n in report["config"]["data"].items()) + ".",
        "",
        "Medians over the rounds; /health vs bare ASGI is the median of per-round ratios.",
        "",
        "| endpoint | request | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, req, res in rows:
        lines.append(
            f"| {name} | `{req}` | {res['rps']:,.0f} | {res['p50_ms']:.2f} | {res['p99_ms']:.2f} "
            f"| {res['non_2xx']} |"
        )
    lines += [
        "",
        "| target | wanted | measured | met |",
        "|---|---:|---:|:---:|",
        f"| /health vs bare ASGI | ≥ {t['health_vs_bare']['target']:.0%} | "
        f"{t['health_vs_bare']['measured']:.0%} | "
        f"{'yes' if t['health_vs_bare']['met'] else 'no'} |",
        f"| topics req/s | ≥ {t['topics_rps']['target']:,.0f} | {t['topics_rps']['measured']:,.0f} "
        f"| {'yes' if t['topics_rps']['met'] else 'no'} |",
        f"| feed req/s | ≥ {t['feed_rps']['target']:,.0f} | {t['feed_rps']['measured']:,.0f} "
        f"| {'yes' if t['feed_rps']['met'] else 'no'} |",
        f"| worker RSS after the run | ≤ {t['rss_mb']['target']:.0f} MB | "
        f"{t['rss_mb']['measured']:.0f} MB | {'yes' if t['rss_mb']['met'] else 'no'} |",
        END,
    ]
    return "\n".join(lines)


def write_doc(section: str) -> None:
    text = (
        DOC.read_text()
        if DOC.exists()
        else (
            "# Benchmarks\n\nMeasured, not asserted: each section is regenerated by its "
            "benchmark.\n"
        )
    )
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backend", description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (it has one CPU)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only, keep docs as they are")
    args = parser.parse_args(argv)
    report = run(args.seconds, args.warmup, args.threads, args.connections, args.rounds)
    print(json.dumps(report["targets"], indent=2))
    if not args.no_write:
        JSON_OUT.parent.mkdir(parents=True, exist_ok=True)
        JSON_OUT.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        write_doc(render_section(report))
        print(f"wrote {JSON_OUT.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
