"""Settings: env over .env, old .env files, CORS_ORIGINS forms, missing settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from eq_backend.cli import main
from eq_backend.settings import (
    DEFAULT_SQLITE_URL,
    PRODUCTION_METRICS_PORT,
    Settings,
    SettingsError,
    load_settings,
    normalize_database_url,
)

OLD_ENV = """\
DATABASE_URL=postgresql://eq:secret-pw@db.internal:5432/eq
REDIS_URL=redis://redis:6379/0
SECRET_KEY=old-service-secret
ALGORITHM=HS256
ACCESS_TOKEN_EXPIRE_MINUTES=60
GOOGLE_CLIENT_ID=cid
GOOGLE_CLIENT_SECRET=csecret
OPENAI_API_KEY=sk-old
CORS_ORIGINS=["https://eq.example.com","http://localhost:3000"]
FRONTEND_URL=https://eq.example.com/
ENVIRONMENT=production
"""


def test_dev_defaults_need_nothing() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.environment == "dev"
    assert settings.database_url == DEFAULT_SQLITE_URL
    assert settings.redis_url == ""
    assert settings.frontend_url == "http://localhost:3000/"
    assert settings.access_token_expire_minutes == 30


def test_old_env_file_works_with_a_public_base_url_added(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(OLD_ENV + "PUBLIC_BASE_URL=https://api.eq.example.com/\n")
    settings = load_settings({}, env_file=env_file)
    assert settings.database_url == "postgresql+psycopg://eq:secret-pw@db.internal:5432/eq"
    assert settings.cors_origins == ("https://eq.example.com", "http://localhost:3000")
    assert settings.access_token_expire_minutes == 60
    assert settings.public_base_url == "https://api.eq.example.com"
    # Production trusts only the origins it is given (finding 7).
    assert settings.allowed_origins == ["https://eq.example.com", "http://localhost:3000"]


def test_production_needs_a_public_base_url(tmp_path: Path) -> None:
    """Finding 9: the OAuth redirect_uri came from the request's Host header."""
    env_file = tmp_path / ".env"
    env_file.write_text(OLD_ENV)
    with pytest.raises(SettingsError) as info:
        load_settings({}, env_file=env_file)
    message = str(info.value)
    assert message == "missing required settings for ENVIRONMENT=production: PUBLIC_BASE_URL"
    with pytest.raises(SettingsError, match="PUBLIC_BASE_URL must be an http"):
        load_settings({"PUBLIC_BASE_URL": "api.eq.example.com"}, env_file=None)
    staging = load_settings({"ENVIRONMENT": "staging", **_REQUIRED}, env_file=None)
    assert staging.public_base_url == ""  # elsewhere the request's own base URL is used


_REQUIRED = {
    "DATABASE_URL": "postgresql://eq@db/eq",
    "REDIS_URL": "redis://r:6379/0",
    "SECRET_KEY": "s" * 20,
}


def test_local_origins_are_trusted_in_dev_only() -> None:
    """Finding 7: localhost origins were credentialed CORS origins also in production."""
    dev = load_settings({}, env_file=None)
    assert "http://localhost:3000" in dev.allowed_origins
    assert "http://127.0.0.1:3001" in dev.allowed_origins
    for environment in ("staging", "test", "production"):
        env = {"ENVIRONMENT": environment, "PUBLIC_BASE_URL": "https://a.example", **_REQUIRED}
        settings = load_settings({**env, "CORS_ORIGINS": "https://a.example"}, env_file=None)
        assert settings.allowed_origins == ["https://a.example"]


def test_docs_and_metrics_leave_the_public_port_in_production() -> None:
    """Finding 8: /schema, /openapi.json and /metrics were public in production."""
    prod = load_settings(
        {"ENVIRONMENT": "production", "PUBLIC_BASE_URL": "https://a.example", **_REQUIRED},
        env_file=None,
    )
    assert not prod.docs_enabled
    assert prod.metrics_listen_port == PRODUCTION_METRICS_PORT
    dev = load_settings({}, env_file=None)
    assert dev.docs_enabled
    assert dev.metrics_listen_port == 0
    chosen = load_settings({"API_DOCS": "off", "METRICS_PORT": "9100"}, env_file=None)
    assert (chosen.docs_enabled, chosen.metrics_listen_port) == (False, 9100)
    with pytest.raises(SettingsError, match=r"^API_DOCS must be true or false"):
        load_settings({"API_DOCS": "maybe"}, env_file=None)


def test_environment_wins_over_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(OLD_ENV + "PUBLIC_BASE_URL=https://api.eq.example.com\n")
    settings = load_settings({"SECRET_KEY": "from-env", "LOG_LEVEL": "DEBUG"}, env_file=env_file)
    assert settings.secret_key == "from-env"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("*", ("*",)),
        ("https://a.example, https://b.example/", ("https://a.example", "https://b.example")),
        ('["https://a.example"]', ("https://a.example",)),
        ("", ()),
    ],
)
def test_cors_origins_forms(raw: str, expected: tuple[str, ...]) -> None:
    assert load_settings({"CORS_ORIGINS": raw}, env_file=None).cors_origins == expected


def test_bad_cors_origins_is_one_line_naming_the_variable() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"CORS_ORIGINS": '["https://a.example",'}, env_file=None)
    assert "CORS_ORIGINS" in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_required_outside_dev_lists_every_name() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"ENVIRONMENT": "production"}, env_file=None)
    message = str(info.value)
    assert "DATABASE_URL" in message
    assert "REDIS_URL" in message
    assert "SECRET_KEY" in message
    assert "\n" not in message


def test_bad_numbers_and_rate_limits_are_named() -> None:
    with pytest.raises(SettingsError, match="ACCESS_TOKEN_EXPIRE_MINUTES"):
        load_settings({"ACCESS_TOKEN_EXPIRE_MINUTES": "soon"}, env_file=None)
    with pytest.raises(SettingsError, match="ANALYZE_RATE_LIMIT"):
        load_settings({"ANALYZE_RATE_LIMIT": "lots"}, env_file=None)
    assert load_settings({"ANALYZE_RATE_LIMIT": "5/hour"}, env_file=None).analyze_rate == (5, 3600)
    assert load_settings({"ANALYZE_RATE_LIMIT": "off"}, env_file=None).analyze_rate == (0, 0)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
        ("postgres://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
        ("postgresql+asyncpg://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
        ("postgresql+psycopg://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
        ("sqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
        ("sqlite+aiosqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
    ],
)
def test_database_url_normalization(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


def test_repr_hides_secrets() -> None:
    settings = Settings(
        secret_key="top-secret",
        openai_api_key="sk-live",
        google_client_secret="gsecret",
        database_url="postgresql+psycopg://eq:db-password@h/d",
        redis_url="redis://:redis-password@h:6379/0",
    )
    shown = repr(settings) + str(settings)
    for secret in ("top-secret", "sk-live", "gsecret", "db-password", "redis-password"):
        assert secret not in shown


def test_cli_prints_one_line_and_exits_2_on_missing_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENVIRONMENT", "staging")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: missing required settings")
    assert len(err.splitlines()) == 1


def test_admin_emails_are_a_lower_cased_comma_list() -> None:
    settings = load_settings({"ADMIN_EMAILS": " Ann@Example.com, bob@example.com ,"}, env_file=None)
    assert settings.admin_emails == ("ann@example.com", "bob@example.com")
    assert settings.is_admin("ANN@example.COM")
    assert not settings.is_admin("eve@example.com")
    assert load_settings({}, env_file=None).admin_emails == ()
    with pytest.raises(SettingsError, match="ADMIN_EMAILS") as info:
        load_settings({"ADMIN_EMAILS": "ann@example.com; bob"}, env_file=None)
    assert "\n" not in str(info.value)


def test_write_rate_limit_is_parsed_and_named_when_malformed() -> None:
    assert load_settings({}, env_file=None).write_rate == (30, 60)
    assert load_settings({"WRITE_RATE_LIMIT": "off"}, env_file=None).write_rate == (0, 0)
    with pytest.raises(SettingsError, match=r"^WRITE_RATE_LIMIT must look like"):
        load_settings({"WRITE_RATE_LIMIT": "many"}, env_file=None)
