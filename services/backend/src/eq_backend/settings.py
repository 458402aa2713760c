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
# In production the OAuth redirect_uri never comes from the request's Host header.
REQUIRED_IN_PRODUCTION = ("public_base_url",)
PRODUCTION_ENVIRONMENTS = frozenset({"prod", "production"})
# Where /metrics is served in production when METRICS_PORT is not set: a port of its own,
# which neither the Ingress nor the public Service exposes (docs/security.md).
PRODUCTION_METRICS_PORT = 9464
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
    # Emails (compared case-insensitively) of the users who may create, rename and delete
    # topics; empty means nobody.
    admin_emails: tuple[str, ...] = ()
    openai_api_key: str = ""
    openai_base_url: str = "https://api.openai.com/v1"
    openai_model: str = "gpt-4o-mini"
    # Total seconds for one call to the LLM, reply included (not per read).
    openai_timeout_seconds: float = 30.0
    # Largest LLM reply read; a longer one is a 502 (a scored answer is a few KB).
    openai_max_reply_bytes: int = 1_000_000
    # Total seconds for Google's token exchange and userinfo together.
    google_timeout_seconds: float = 8.0
    # Every request answers within this (503 envelope after it); routes that call out
    # get their outbound deadline on top. 0 turns it off.
    request_timeout_seconds: float = 10.0
    # PostgreSQL statement_timeout of every connection (0: none).
    db_statement_timeout_seconds: float = 5.0
    # Longest wait for a free pooled connection before a 503.
    db_pool_timeout_seconds: float = 3.0
    analyze_rate_limit: str = "10/minute"
    # Per user and per kind of write (situations, comments, reactions); fails open when
    # Redis is down. '0' or 'off' disables it.
    write_rate_limit: str = "30/minute"
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
    # Seconds the server keeps answering after SIGTERM, closing each connection after its
    # response, before it stops listening. Unset: 0 in dev, 5 elsewhere (see load_settings).
    shutdown_drain_seconds: float = 0.0
    # OpenAPI docs (/schema, /openapi.json, /docs); unset: on except in production.
    api_docs: bool | None = None
    # Port of a separate /metrics listener; 0: /metrics and /api/v1/metrics on the API's
    # own port. Unset: 0, except PRODUCTION_METRICS_PORT in production.
    metrics_port: int | None = None

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
    def is_production(self) -> bool:
        return self.environment in PRODUCTION_ENVIRONMENTS

    @property
    def docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else not self.is_production

    @property
    def metrics_listen_port(self) -> int:
        """0 when metrics are served on the API's port, else the port of their own."""
        if self.metrics_port is not None:
            return self.metrics_port
        return PRODUCTION_METRICS_PORT if self.is_production else 0

    def is_admin(self, email: str) -> bool:
        return email.lower() in self.admin_emails

    @property
    def allowed_origins(self) -> list[str]:
        """Configured CORS origins; in dev also the four local frontend origins (a local
        origin is anyone's machine: never trusted with credentials elsewhere)."""
        local = LOCAL_ORIGINS if self.is_dev else ()
        return list(dict.fromkeys([*self.cors_origins, *local]))

    @property
    def analyze_rate(self) -> tuple[int, int]:
        """ANALYZE_RATE_LIMIT as (requests, window seconds); (0, 0) disables it."""
        return parse_rate_limit(self.analyze_rate_limit)

    @property
    def write_rate(self) -> tuple[int, int]:
        """WRITE_RATE_LIMIT as (requests, window seconds); (0, 0) disables it."""
        return parse_rate_limit(self.write_rate_limit, "WRITE_RATE_LIMIT")


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


def parse_base_url(raw: str) -> str:
    """An absolute http(s) URL without a query, e.g. https://api.eq.example.com."""
    text = raw.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", text):
        raise SettingsError(
            f"PUBLIC_BASE_URL must be an http(s) URL like https://api.example.com, got {raw!r}"
        )
    return text


def parse_email_list(raw: str) -> tuple[str, ...]:
    """A comma-separated list of emails, lower-cased; each a plain address."""
    emails = tuple(v.strip().lower() for v in raw.split(",") if v.strip())
    for email in emails:
        if not re.fullmatch(r"[^@\s,;<>]+@[^@\s,;<>]+", email):
            raise SettingsError(
                f"ADMIN_EMAILS must be a comma-separated list of emails, got {email!r}"
            )
    return emails


def parse_switch(name: str, raw: str) -> bool:
    """true/false, on/off, yes/no, 1/0 (any case)."""
    text = raw.strip().lower()
    if text in ("true", "on", "yes", "1"):
        return True
    if text in ("false", "off", "no", "0"):
        return False
    raise SettingsError(f"{name.upper()} must be true or false, got {raw!r}")


def parse_rate_limit(raw: str, name: str = "ANALYZE_RATE_LIMIT") -> tuple[int, int]:
    """'10/minute' → (10, 60). '0', 'off' or '' disable the limit."""
    text = raw.strip().lower()
    if text in ("", "0", "off", "none"):
        return (0, 0)
    match = re.fullmatch(r"(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?", text)
    if not match:
        raise SettingsError(
            f"{name} must look like '10/minute' (second, minute, hour, day), got {raw!r}"
        )
    count, multiplier, unit = match.groups()
    return (int(count), int(multiplier or 1) * _RATE_UNITS[unit])


def _convert(name: str, raw: str, annotation: Any) -> Any:
    if name == "cors_origins":
        return parse_cors_origins(raw)
    if name == "admin_emails":
        return parse_email_list(raw)
    if name == "database_url":
        return normalize_database_url(raw.strip())
    if name.endswith("_rate_limit"):
        parse_rate_limit(raw, name.upper())
    if name == "public_base_url":
        return parse_base_url(raw)
    if annotation in (bool, bool | None):
        return parse_switch(name, raw)
    try:
        if annotation in (int, int | None):
            return int(raw.strip())
        if annotation is float:
            return float(raw.strip())
    except ValueError:
        kind = "a number" if annotation is float else "an integer"
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
        required: tuple[str, ...] = REQUIRED_OUTSIDE_DEV
        if environment in PRODUCTION_ENVIRONMENTS:
            required += REQUIRED_IN_PRODUCTION
        missing = [n.upper() for n in required if n not in values]
        if missing:
            problems.insert(
                0, f"missing required settings for ENVIRONMENT={environment}: {', '.join(missing)}"
            )
    if problems:
        raise SettingsError("; ".join(problems))
    values.setdefault("cookie_secure", environment == "production")
    values.setdefault("shutdown_drain_seconds", 0.0 if environment == "dev" else 5.0)
    return Settings(**values)
