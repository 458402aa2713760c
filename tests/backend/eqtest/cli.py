"""Run the backend's own CLI (`python -m eq_backend ...`) in a subprocess with an exact env."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def cli_env(env: dict[str, str]) -> dict[str, str]:
    # PATH/HOME/LANG, plus coverage's variables so a measured run also measures the CLI
    base = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "HOME", "LANG") or k.startswith(("COV_CORE_", "COVERAGE_"))
    }
    return {**base, **env}


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python -m eq_backend ...` with exactly `env` (plus PATH/HOME); assert it succeeds."""
    proc = subprocess.run(
        [sys.executable, "-m", "eq_backend", *args],
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=str(cwd),
    )
    assert proc.returncode == 0, (
        f"eq_backend {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    )
    return proc
