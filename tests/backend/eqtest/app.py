"""Build the app under test from an exact environment (no .env file, no process env)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def make_settings(env: dict[str, str]) -> Any:
    from eq_backend.settings import load_settings

    return load_settings(env, env_file=str(Path(__file__).parent / "no-such.env"))


def make_app(env: dict[str, str]) -> Any:
    from eq_backend.app import create_app

    return create_app(make_settings(env))
