"""Deploy settings: read a `.env` (python-dotenv), check every key, and split them into what
goes to the ConfigMap, what goes to the Secret and what only steers the deploy tool.

A `.env` written for the manual process (K8S_NAMESPACE, IMAGE, DATABASE_URL, REDIS_URL,
SECRET_KEY, ...) works unchanged. Every key is described once, in `KEYS`; `.env.example`
lists the same keys (a unit test holds them together).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from eq_deploy.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[3]
ENV_EXAMPLE = REPO_ROOT / ".env.example"

Where = Literal["config", "secret", "deploy", "runtime"]

# What `git rev-parse --short` can print: abbreviations start at 4 hex digits.
TAG_PATTERN = re.compile(r"sha-[0-9a-f]{4,40}")
# What a Docker tag may be at all (used with --allow-tag).
ANY_TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
LOG_LEVELS = {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}
ALGORITHMS = {"HS256", "HS384", "HS512"}
DATABASE_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg", "postgresql+asyncpg"}
REDIS_SCHEMES = {"redis", "rediss"}


@dataclass(frozen=True)
class Key:
    name: str
    where: Where
    check: Callable[[str, str], str | None] | None = None
    default: str | None = None


def _url(schemes: set[str], *, cluster_reachable: bool) -> Callable[[str, str], str | None]:
    def check(name: str, value: str) -> str | None:
        parts = urlsplit(value)
        if parts.scheme not in schemes:
            return f"{name} must start with {' or '.join(sorted(s + '://' for s in schemes))}"
        try:
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            return f"{name} has an invalid port"
        if not host:
            return f"{name} has no host"
        if cluster_reachable and is_loopback(host):
            return (
                f"{name} points at {host}, which inside a pod is the pod itself; "
                "use the database host's name or the node address"
            )
        return None

    return check


def is_loopback(host: str) -> bool:
    """`localhost` and 127.0.0.0/8 and ::1: addresses that mean "this pod" in a cluster."""
    if host.lower() in {"localhost", "localhost.localdomain", "ip6-localhost"}:
        return True
    if host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cors(name: str, value: str) -> str | None:
    try:
        normalize_cors_origins(value)
    except ValueError as exc:
        return f"{name} {exc}"
    return None


def normalize_cors_origins(value: str) -> str:
    """CORS_ORIGINS as the JSON list the backend reads. Accepts a JSON list, a bare `*`, a
    comma-separated list or nothing; every origin must be `*` or `scheme://host[:port]`."""
    text = value.strip()
    origins: list[str]
    if not text:
        origins = []
    elif text[0] in '[{"':
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(parsed, list) or not all(isinstance(o, str) for o in parsed):
            raise ValueError("must be a JSON list of strings")
        origins = parsed
    else:
        origins = [o.strip() for o in text.split(",") if o.strip()]
    for origin in origins:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
            raise ValueError(f"has {origin!r}, which is not an origin like https://example.com")
    return json.dumps([o.rstrip("/") if o != "*" else o for o in origins])


def _http_url(name: str, value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return f"{name} must be an http:// or https:// URL"
    return None


def _positive_int(name: str, value: str) -> str | None:
    if not value.isdigit() or int(value) <= 0:
        return f"{name} must be a positive whole number of minutes, not {value!r}"
    return None


def _one_of(allowed: set[str]) -> Callable[[str, str], str | None]:
    def check(name: str, value: str) -> str | None:
        if value.upper() not in allowed:
            return f"{name} must be one of {', '.join(sorted(allowed))}, not {value!r}"
        return None

    return check


def _secret_key(name: str, value: str) -> str | None:
    if len(value) < 16:
        return f"{name} is too short ({len(value)} characters; use at least 16 random ones)"
    return None


def _namespace(name: str, value: str) -> str | None:
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", value):
        return f"{name} {value!r} is not a valid namespace name (lower-case letters, digits, '-')"
    return None


def _image(name: str, value: str) -> str | None:
    from eq_deploy.images import parse_image

    try:
        parse_image(value)
    except ValueError as exc:
        return f"{name} {exc}"
    return None


KEYS: tuple[Key, ...] = (
    # The backend's settings (CONTRACT.md "Settings").
    Key("DATABASE_URL", "secret", _url(DATABASE_SCHEMES, cluster_reachable=True)),
    Key("REDIS_URL", "secret", _url(REDIS_SCHEMES, cluster_reachable=True)),
    Key("SECRET_KEY", "secret", _secret_key),
    Key("ALGORITHM", "config", _one_of(ALGORITHMS), "HS256"),
    Key("ACCESS_TOKEN_EXPIRE_MINUTES", "config", _positive_int, "30"),
    Key("GOOGLE_CLIENT_ID", "secret"),
    Key("GOOGLE_CLIENT_SECRET", "secret"),
    Key("OPENAI_API_KEY", "secret"),
    Key("OPENAI_BASE_URL", "config", _http_url, "https://api.openai.com/v1"),
    Key("OPENAI_MODEL", "config", None, "gpt-4o-mini"),
    Key("CORS_ORIGINS", "config", _cors, "[]"),
    Key("FRONTEND_URL", "config", _http_url, "http://localhost:3000/"),
    Key("ENVIRONMENT", "config"),
    Key("LOG_LEVEL", "config", _one_of(LOG_LEVELS), "INFO"),
    Key("ADMIN_EMAILS", "config"),
    # Tuning knobs of the backend; sent only when set.
    Key("PUBLIC_BASE_URL", "config", _http_url),
    Key("API_DOCS", "config"),
    Key("METRICS_PORT", "config"),
    Key("GOOGLE_AUTHORIZE_URL", "config", _http_url),
    Key("GOOGLE_TOKEN_URL", "config", _http_url),
    Key("GOOGLE_USERINFO_URL", "config", _http_url),
    Key("OPENAI_TIMEOUT_SECONDS", "config"),
    Key("OPENAI_MAX_REPLY_BYTES", "config"),
    Key("GOOGLE_TIMEOUT_SECONDS", "config"),
    Key("REQUEST_TIMEOUT_SECONDS", "config"),
    Key("DB_STATEMENT_TIMEOUT_SECONDS", "config"),
    Key("DB_POOL_TIMEOUT_SECONDS", "config"),
    Key("ANALYZE_RATE_LIMIT", "config"),
    Key("WRITE_RATE_LIMIT", "config"),
    Key("DB_POOL_SIZE", "config"),
    Key("DB_MAX_OVERFLOW", "config"),
    Key("READ_CACHE", "config"),
    Key("COOKIE_SECURE", "config"),
    Key("METRICS_REFRESH_SECONDS", "config"),
    Key("SHUTDOWN_DRAIN_SECONDS", "config"),
    Key("SHUTDOWN_GRACE_SECONDS", "config"),
    # Set by the deploy tool on the pods (what /health reports); a value in .env is ignored.
    Key("DEPLOYED_AT", "runtime"),
    Key("DEPLOY_SHA", "runtime"),
    Key("DEPLOY_IMAGE", "runtime"),
    Key("DEPLOY_BY", "runtime"),
    # Only steer the deploy tool.
    Key("K8S_NAMESPACE", "deploy", _namespace),
    Key("IMAGE", "deploy", _image),
    Key("KUBE_CONTEXT", "deploy"),
    Key("INGRESS_HOST", "deploy"),
)
KEYS_BY_NAME = {k.name: k for k in KEYS}


@dataclass(frozen=True)
class Settings:
    """Checked settings. `values` holds every known key that has a value."""

    values: Mapping[str, str]
    source: str

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def config_data(self, defaults: Mapping[str, str]) -> dict[str, str]:
        """The ConfigMap's data: every config key, from .env, else the environment file,
        else the key's documented default."""
        data: dict[str, str] = {}
        for key in KEYS:
            if key.where != "config":
                continue
            value = self.values.get(key.name) or defaults.get(key.name) or key.default
            if value is None:
                continue
            if key.name == "CORS_ORIGINS":
                value = normalize_cors_origins(value)
            data[key.name] = value
        return data

    def secret_data(self) -> dict[str, str]:
        """The Secret's data: only the secret keys that have a value."""
        return {
            k.name: self.values[k.name]
            for k in KEYS
            if k.where == "secret" and self.values.get(k.name)
        }


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a `.env` with python-dotenv, refusing lines it cannot parse (it would only warn)."""
    from dotenv.parser import parse_stream

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    values: dict[str, str] = {}
    import io

    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = binding.original.line
            raise UsageError(
                f"{path}:{line}: cannot parse {binding.original.string.strip()[:40]!r}"
            )
        if binding.key is None:
            continue
        values[binding.key] = binding.value or ""
    return values


def sample_values() -> dict[str, str]:
    """The documented sample values of `.env.example` (render and lint without a real .env)."""
    return {k: v for k, v in read_env_file(ENV_EXAMPLE).items() if k in KEYS_BY_NAME and v}


def load_settings(
    env_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from `env_file` (default `./.env` when it exists); keys the file lacks are taken
    from the process environment (CI passes secrets that way). The file wins over the
    environment so a stray shell variable cannot redirect a deploy."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    source = "environment"
    path = env_file if env_file is not None else Path(".env")
    if path.exists():
        values = read_env_file(path)
        source = str(path)
    elif env_file is not None:
        raise UsageError(f"{env_file}: no such file (--env-file)")
    for key in KEYS:
        if key.name not in values and environ.get(key.name):
            values[key.name] = environ[key.name]
    return Settings(values=known(values), source=source)


def known(values: Mapping[str, str]) -> dict[str, str]:
    """Only the keys this tool knows (an old `.env` may hold others, e.g. for docker compose),
    trimmed; runtime keys are dropped because the tool sets them."""
    out: dict[str, str] = {}
    for name, value in values.items():
        key = KEYS_BY_NAME.get(name)
        if key is None or key.where == "runtime":
            continue
        out[name] = value.strip()
    return out


def check_settings(settings: Settings | Mapping[str, str], required: Iterable[str]) -> Settings:
    """Every required key present and every present key well-formed; the first problem
    raises a UsageError naming the variable."""
    if not isinstance(settings, Settings):
        settings = Settings(values=known(settings), source="values")
    missing = [name for name in required if not settings.values.get(name)]
    if missing:
        raise UsageError(f"missing required setting(s) in {settings.source}: {', '.join(missing)}")
    for name, value in settings.values.items():
        key = KEYS_BY_NAME[name]
        if key.check is None or not value:
            continue
        problem = key.check(name, value)
        if problem:
            raise UsageError(f"{problem} (in {settings.source})")
    return settings


def check_tag(tag: str, *, allow_tag: bool = False) -> str:
    """`sha-<4..40 hex>`; any valid Docker tag only with --allow-tag."""
    if TAG_PATTERN.fullmatch(tag):
        return tag
    if allow_tag and ANY_TAG_PATTERN.fullmatch(tag):
        return tag
    if allow_tag:
        raise UsageError(f"--tag {tag!r} is not a valid image tag")
    raise UsageError(
        f"--tag {tag!r} is not sha-<4 to 40 hex digits> (deploy commits, not moving tags; "
        "--allow-tag overrides)"
    )
