"""One settings object, read from the environment and an optional `.env` file.

Names are the environment variable names lower-cased. The environment wins over `.env`,
and an old service's `.env` works unchanged (``postgresql://`` URLs, CORS_ORIGINS as JSON).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
from dotenv import dotenv_values

DEV_SECRET_KEY = "dev-only-secret-key-never-use-outside-dev"  # noqa: S105 - documented dev default
DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./eq-dev.db"
LOCAL_ORIGINS = (
    "http://localhost:3000",
    "http://localhost:3001",
    "http://127.0.0.1:3000",
    "http://127.0.0.1:3001",
)
# Outside dev these must be set; dev has embedded defaults for them.
REQUIRED_OUTSIDE_DEV = ("database_url", "redis_url", "secret_key")
SECRET_FIELDS = frozenset(
    {"secret_key", "google_client_secret", "openai_api_key", "database_url", "redis_url"}
)
_RATE_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line meant for a person."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """Every setting of the backend. Field names are the env var names lower-cased."""

    database_url: str = DEFAULT_SQLITE_URL
    redis_url: str = ""
    secret_key: str = DEV_SECRET_KEY
    algorithm: str = "HS256"
    access_token_expire_minutes: int = 30
    google_client_id: str = ""
    google_client_secret: str = ""
    google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - an URL
    google_userinfo_url: str = "https://openidconnect.googleapis.com/v1/userinfo"
    public_base_url: str = ""
    openai_api_key: str = ""
    openai_base_url: str = "https://api.openai.com/v1"
    openai_model: str = "gpt-4o-mini"
    openai_timeout_seconds: float = 30.0
    analyze_rate_limit: str = "10/minute"
    cors_origins: tuple[str, ...] = ()
    frontend_url: str = "http://localhost:3000/"
    environment: str = "dev"
    log_level: str = "INFO"
    deployed_at: str = ""
    deploy_sha: str = ""
    deploy_image: str = ""
    deploy_by: str = ""
    db_pool_size: int = 10
    db_max_overflow: int = 10
    read_cache: bool = True
    # The auth cookie's Secure attribute. Unset: on in production only, so sign-in and
    # sign-out also work on a plain-HTTP dev or staging host (see load_settings).
    cookie_secure: bool = True
    metrics_refresh_seconds: float = 30.0
    shutdown_grace_seconds: float = 20.0

    def __repr__(self) -> str:
        parts = []
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if name in SECRET_FIELDS and value:
                value = redact_url(value) if name.endswith("_url") else "***"
            parts.append(f"{name}={value!r}")
        return f"Settings({', '.join(parts)})"

    __str__ = __repr__

    @property
    def is_dev(self) -> bool:
        return self.environment == "dev"

    @property
    def allowed_origins(self) -> list[str]:
        """Configured CORS origins plus the four local frontend origins, deduplicated."""
        return list(dict.fromkeys([*self.cors_origins, *LOCAL_ORIGINS]))

    @property
    def analyze_rate(self) -> tuple[int, int]:
        """ANALYZE_RATE_LIMIT as (requests, window seconds); (0, 0) disables it."""
        return parse_rate_limit(self.analyze_rate_limit)


def redact_url(url: str) -> str:
    """Hide the password of a URL such as postgresql://user:pw@host/db."""
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


def normalize_database_url(url: str) -> str:
    """Map the URLs old `.env` files carry to the async drivers this service uses."""
    for prefix in (
        "postgresql+asyncpg://",
        "postgresql+psycopg2://",
        "postgresql://",
        "postgres://",
    ):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def parse_cors_origins(raw: str) -> tuple[str, ...]:
    """A JSON list, a bare `*`, or a comma-separated list of origins."""
    text = raw.strip()
    if not text:
        return ()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"CORS_ORIGINS is not a valid JSON list: {exc.msg}") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SettingsError("CORS_ORIGINS must be a JSON list of strings")
        return tuple(v.strip().rstrip("/") for v in value if v.strip())
    if text.startswith(("{", '"')):
        raise SettingsError(
            'CORS_ORIGINS must be a JSON list like ["https://a.example"], "*" or a comma list'
        )
    return tuple(v.strip().rstrip("/") for v in text.split(",") if v.strip())


def parse_switch(name: str, raw: str) -> bool:
    """true/false, on/off, yes/no, 1/0 (any case)."""
    text = raw.strip().lower()
    if text in ("true", "on", "yes", "1"):
        return True
    if text in ("false", "off", "no", "0"):
        return False
    raise SettingsError(f"{name.upper()} must be true or false, got {raw!r}")


def parse_rate_limit(raw: str) -> tuple[int, int]:
    """'10/minute' → (10, 60). '0', 'off' or '' disable the limit."""
    text = raw.strip().lower()
    if text in ("", "0", "off", "none"):
        return (0, 0)
    match = re.fullmatch(r"(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?", text)
    if not match:
        raise SettingsError(
            "ANALYZE_RATE_LIMIT must look like '10/minute' (second, minute, hour, day), "
            f"got {raw!r}"
        )
    count, multiplier, unit = match.groups()
    return (int(count), int(multiplier or 1) * _RATE_UNITS[unit])


def _convert(name: str, raw: str, annotation: Any) -> Any:
    if name == "cors_origins":
        return parse_cors_origins(raw)
    if name == "database_url":
        return normalize_database_url(raw.strip())
    if name == "analyze_rate_limit":
        parse_rate_limit(raw)
    if annotation is bool:
        return parse_switch(name, raw)
    try:
        if annotation is int:
            return int(raw.strip())
        if annotation is float:
            return float(raw.strip())
    except ValueError:
        kind = "an integer" if annotation is int else "a number"
        raise SettingsError(f"{name.upper()} must be {kind}, got {raw!r}") from None
    return raw.strip()


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Build Settings from `environ` (default: os.environ) over `env_file` (if it exists).

    Raises SettingsError with one line listing every missing required setting (outside dev)
    or naming the malformed variable.
    """
    source: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        source.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    source.update(os.environ if environ is None else environ)

    values: dict[str, Any] = {}
    problems: list[str] = []
    annotations = {f.name: f.type for f in msgspec.structs.fields(Settings)}
    for name, annotation in annotations.items():
        raw = source.get(name.upper())
        if raw is None or raw.strip() == "":
            continue
        try:
            values[name] = _convert(name, raw, annotation)
        except SettingsError as exc:
            problems.append(str(exc))
    environment = values.get("environment", "dev").lower()
    values["environment"] = environment
    if environment != "dev":
        missing = [n.upper() for n in REQUIRED_OUTSIDE_DEV if n not in values]
        if missing:
            problems.insert(
                0, f"missing required settings for ENVIRONMENT={environment}: {', '.join(missing)}"
            )
    if problems:
        raise SettingsError("; ".join(problems))
    values.setdefault("cookie_secure", environment == "production")
    return Settings(**values)
