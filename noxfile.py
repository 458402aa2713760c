"""Sessions: `nox` runs lint, tests and manifests; `nox -s e2e | image | bench` on demand.

All sessions share one virtualenv (.nox/eq), installed from the hash-checked
requirements/dev.txt and then the workspace packages (the backend, the deploy tool and the
dev-only eq_cluster) without dependencies: the installs are no-ops after the first session,
which matters on a 2-core CI runner.
Go-built tools (actionlint, kind where needed) are installed once with `go install` into
~/.cache/eq-tools/<tool>-<version>.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nox
from nox.command import CommandFailed

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".nox" / "eq"
BIN = VENV / "bin"
TOOLS_CACHE = Path(os.environ.get("EQ_TOOLS_CACHE", Path.home() / ".cache" / "eq-tools"))
ACTIONLINT = ("github.com/rhysd/actionlint/cmd/actionlint", "v1.7.12")

PACKAGES = (
    "services/backend/src/eq_backend",
    "deploy/src/eq_deploy",
    "deploy/cluster/src/eq_cluster",
)
DOCKERFILE = "docker/backend.Dockerfile"
WORKFLOWS = ROOT / ".github" / "workflows"

nox.options.sessions = ["lint", "tests", "manifests"]
nox.options.error_on_missing_interpreters = True
# uv must use this machine's Python, never download one.
os.environ["UV_PYTHON_DOWNLOADS"] = "never"


def _uv() -> str:
    found = shutil.which("uv")
    if found is None:
        raise RuntimeError("uv is not on PATH: run nox through ./dev (requirements/tools.txt)")
    return found


def install(session: nox.Session) -> dict[str, str]:
    """Bring the shared venv up to date; return the environment to run its tools in."""
    uv = _uv()
    if not (BIN / "python").exists():
        session.run(uv, "venv", "--quiet", "--python", sys.executable, str(VENV), external=True)
    python = ["--python", str(BIN / "python")]
    session.run(
        uv, "pip", "install", "--quiet", *python,
        "--require-hashes", "-r", "requirements/dev.txt", external=True,
    )  # fmt: skip
    session.run(
        uv, "pip", "install", "--quiet", *python,
        "--no-deps", "-e", "services/backend", "-e", "deploy", "-e", "deploy/cluster",
        external=True,
    )  # fmt: skip
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(VENV),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def run(session: nox.Session, env: dict[str, str], *args: str) -> None:
    """Run a tool of the shared venv (or, failing that, of PATH)."""
    program = shutil.which(args[0], path=env["PATH"]) or args[0]
    session.run(program, *args[1:], env=env, external=True)


def go_tool(session: nox.Session, module: str, version: str) -> Path:
    """A Go tool built from the Go module proxy once, cached by version."""
    name = module.rsplit("/", 1)[-1]
    target = TOOLS_CACHE / f"{name}-{version}"
    binary = target / name
    if not binary.exists():
        if shutil.which("go") is None:
            session.error(f"{name} {version} needs Go to build (`go install {module}@{version}`)")
        target.mkdir(parents=True, exist_ok=True)
        session.run(
            "go", "install", f"{module}@{version}",
            env={"GOBIN": str(target), "CGO_ENABLED": "0"}, external=True,
        )  # fmt: skip
    return binary


def yaml_files() -> list[str]:
    """The repository's tracked YAML files, .yamllint's ignores applied by yamllint."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.yml", "*.yaml"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return [*listed, ".yamllint"]


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """ruff, mypy (strict), hadolint, actionlint, zizmor, yamllint: every tool runs, then the
    session fails naming each one that found something."""
    env = install(session)
    workflows = sorted(str(p.relative_to(ROOT)) for p in WORKFLOWS.glob("*.yml"))
    if not workflows:
        session.error("no workflow in .github/workflows")
    actionlint = str(go_tool(session, *ACTIONLINT))
    failed = []
    for command in (
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("mypy", *PACKAGES),
        ("hadolint", DOCKERFILE),
        (actionlint, *workflows),
        ("zizmor", "--offline", *workflows),
        ("yamllint", "--strict", *yaml_files()),
    ):
        try:
            run(session, env, *command)
        except CommandFailed:
            tool = Path(command[0]).name
            failed.append(f"ruff {command[1]}" if tool == "ruff" else tool)
    if failed:
        session.error(f"lint failed: {', '.join(failed)}")


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """Backend and deploy-tool tests against real PostgreSQL and Redis, with coverage
    (90% of eq_backend's lines at least). Tests marked `cluster` belong to `e2e`."""
    env = install(session)
    for name in ("EQ_TEST_DATABASE_URL", "EQ_TEST_REDIS_URL"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    env["COVERAGE_FILE"] = str(ROOT / ".nox" / ".coverage.tests")
    paths = session.posargs or ["tests/backend", "tests/deploy", "tests/cluster"]
    # pytest's exit code 5 (no test collected) fails the session like any non-zero code.
    run(
        session, env, "pytest", "-m", "not cluster", "-p", "no:cacheprovider",
        # A hung test fails (with every thread's stack) instead of eating CI's 90 minutes.
        "--timeout", "300", "--cov", "--cov-report=", *paths,
    )  # fmt: skip
    if not session.posargs:
        run(session, env, "coverage", "report", "--include=*/eq_backend/*", "--fail-under=90")
        run(session, env, "coverage", "report", "--include=*/eq_deploy/*")


@nox.session(python=False)
def manifests(session: nox.Session) -> None:
    """Render every environment for a sample tag; strict schemas, yamllint, policy."""
    env = install(session)
    out = ROOT / ".nox" / "rendered"
    shutil.rmtree(out, ignore_errors=True)
    run(session, env, "python", "-m", "eq_deploy.policy", "--out", str(out))
    run(session, env, "yamllint", "--strict", str(out), str(ROOT / "deploy" / "manifests"))


@nox.session(python=False, default=False)
def e2e(session: nox.Session) -> None:
    """End-to-end scenarios on a cluster: $EQ_CLUSTER (local | kind | current), else kind
    when it can run, else the local cluster built from source (`inv cluster.up`)."""
    env = install(session)
    for name in ("EQ_CLUSTER", "KUBECONFIG", "EQ_CLUSTER_CACHE", "DOCKER_HOST"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    # Without kind on PATH, eq_cluster builds the pinned one into the cluster cache itself.
    paths = session.posargs or ["tests/e2e"]
    run(session, env, "pytest", "-m", "cluster", "-p", "no:cacheprovider", "-v", *paths)


@nox.session(python=False, default=False)
def image(session: nox.Session) -> None:
    """Build docker/backend.Dockerfile and test the image (needs a Docker engine with
    BuildKit). $EQ_BASE_IMAGE overrides the base; see tests/image/conftest.py."""
    env = install(session)
    for name in ("EQ_BASE_IMAGE", "EQ_IMAGE", "DOCKER_HOST", "EQ_BUILDER"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    paths = session.posargs or ["tests/image"]
    run(session, env, "pytest", "-p", "no:cacheprovider", "-v", *paths)


@nox.session(python=False, default=False)
def bench(session: nox.Session) -> None:
    """The recorded benchmarks: backend throughput, and the deploy tool where present.
    The image figures are recorded with `nox -s image_bench`."""
    env = install(session)
    run(session, env, "python", "-m", "benchmarks.backend", *session.posargs)
    if (ROOT / "benchmarks" / "deploy.py").exists() or (ROOT / "benchmarks" / "deploy").is_dir():
        run(session, env, "python", "-m", "benchmarks.deploy")


@nox.session(name="image_bench", python=False, default=False)
def image_bench(session: nox.Session) -> None:
    """Measure the image (size per platform, cold and code-only build, start to /health)
    into docs/benchmarks/image.json."""
    env = install(session)
    for name in ("EQ_BASE_IMAGE", "DOCKER_HOST", "EQ_BUILDER", "EQ_REGISTRY"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    run(session, env, "python", "tests/image/measure.py", *session.posargs)
