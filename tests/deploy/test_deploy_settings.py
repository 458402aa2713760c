"""Settings and tags: every failure of the manual process is refused with one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from eq_deploy.errors import UsageError
from eq_deploy.settings import (
    ENV_EXAMPLE,
    KEYS,
    check_settings,
    check_tag,
    load_settings,
    normalize_cors_origins,
    read_env_file,
)

OLD_PROCESS_ENV = """\
K8S_NAMESPACE=eq-prod
IMAGE=someone/eq-backend:sha-1a2b3c4
DATABASE_URL=postgresql://eq:secret@db.prod.example.com:5432/eq?sslmode=require
REDIS_URL=redis://:pw@redis.prod.example.com:6379/0
SECRET_KEY="a-long-enough-secret-key-123456"
ALGORITHM=HS256
ACCESS_TOKEN_EXPIRE_MINUTES=30
GOOGLE_CLIENT_ID=id.apps.googleusercontent.com
GOOGLE_CLIENT_SECRET=gsecret
OPENAI_API_KEY=sk-xyz
OPENAI_BASE_URL=https://api.openai.com/v1
CORS_ORIGINS=["https://eq.example.com"]
ENVIRONMENT=production
LOG_LEVEL=INFO
POSTGRES_PASSWORD=only-for-compose
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def test_old_process_env_file_works_unchanged(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, OLD_PROCESS_ENV), environ={})
    checked = check_settings(settings, ["DATABASE_URL", "SECRET_KEY", "REDIS_URL"])
    assert checked.get("K8S_NAMESPACE") == "eq-prod"
    assert checked.get("SECRET_KEY") == "a-long-enough-secret-key-123456"
    assert "POSTGRES_PASSWORD" not in checked.values  # unknown keys never reach the cluster


def test_file_wins_and_environment_fills_gaps(tmp_path: Path) -> None:
    path = write(tmp_path, "DATABASE_URL=postgresql://db.example.com/eq\n")
    settings = load_settings(
        path,
        environ={
            "DATABASE_URL": "postgresql://localhost/eq",
            "SECRET_KEY": "from-ci-0123456789abc",
        },
    )
    assert settings.get("DATABASE_URL") == "postgresql://db.example.com/eq"
    assert settings.get("SECRET_KEY") == "from-ci-0123456789abc"


def test_runtime_keys_in_env_file_are_ignored(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "DEPLOY_SHA=forged\n"), environ={})
    assert "DEPLOY_SHA" not in settings.values


def test_malformed_env_line_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "SECRET_KEY=abc\nDATABASE_URL='unterminated\nLOG_LEVEL=INFO\n")
    with pytest.raises(UsageError, match=r"\.env:2: cannot parse"):
        read_env_file(path)


def test_missing_env_file_flag_is_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--env-file"):
        load_settings(tmp_path / "nope.env", environ={})


def test_missing_required_settings_are_all_listed() -> None:
    with pytest.raises(UsageError, match=r"missing required setting.*: DATABASE_URL, SECRET_KEY$"):
        check_settings({"LOG_LEVEL": "INFO"}, ["DATABASE_URL", "SECRET_KEY"])


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://eq:pw@localhost:5432/eq",
        "postgresql://eq:pw@127.0.0.1/eq",
        "postgresql://eq:pw@127.0.1.1/eq",
        "postgresql+psycopg://eq@[::1]:5432/eq",
    ],
)
def test_loopback_database_url_is_refused(url: str) -> None:
    with pytest.raises(UsageError, match=r"^DATABASE_URL points at .* the pod itself"):
        check_settings({"DATABASE_URL": url}, [])


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://eq:pw@10.0.2.15:5432/eq",
        "postgresql://eq@db.internal/eq",
        "postgres://u:p@host.docker.internal/x",
    ],
)
def test_node_or_host_address_is_allowed(url: str) -> None:
    check_settings({"DATABASE_URL": url}, [])


def test_loopback_redis_is_refused() -> None:
    with pytest.raises(UsageError, match=r"^REDIS_URL points at localhost"):
        check_settings({"REDIS_URL": "redis://localhost:6379/0"}, [])


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_URL", "mysql://db/eq", "DATABASE_URL must start with"),
        ("DATABASE_URL", "sqlite+aiosqlite:///eq.db", "DATABASE_URL must start with"),
        ("DATABASE_URL", "postgresql://db:notaport/eq", "DATABASE_URL has an invalid port"),
        ("SECRET_KEY", "short", "SECRET_KEY is too short"),
        ("ALGORITHM", "RS256", "ALGORITHM must be one of"),
        ("ACCESS_TOKEN_EXPIRE_MINUTES", "thirty", "ACCESS_TOKEN_EXPIRE_MINUTES must be a positive"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of"),
        ("FRONTEND_URL", "localhost:3000", "FRONTEND_URL must be an http"),
        ("K8S_NAMESPACE", "EQ_Prod", "K8S_NAMESPACE 'EQ_Prod' is not a valid namespace"),
        ("IMAGE", "REPLACE_IMG", "IMAGE 'REPLACE_IMG' has an invalid repository name"),
        ("CORS_ORIGINS", '["https://a.example",', "CORS_ORIGINS is not valid JSON"),
        ("CORS_ORIGINS", '{"a": 1}', "CORS_ORIGINS must be a JSON list"),
        ("CORS_ORIGINS", "eq.example.com", "CORS_ORIGINS has 'eq.example.com'"),
    ],
)
def test_malformed_values_are_named(name: str, value: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        check_settings({name: value}, [])
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ('["https://a.example"]', '["https://a.example"]'),
        ("*", '["*"]'),
        (
            "https://a.example, http://b.example:8080/",
            '["https://a.example", "http://b.example:8080"]',
        ),
        ("", "[]"),
        ("[]", "[]"),
    ],
)
def test_cors_origins_are_normalized_to_a_json_list(raw: str, normalized: str) -> None:
    assert normalize_cors_origins(raw) == normalized


@pytest.mark.parametrize("tag", ["sha-abc1234", "sha-abc123", "sha-abcd", "sha-" + "f" * 40])
def test_sha_tags_are_accepted(tag: str) -> None:
    assert check_tag(tag) == tag


@pytest.mark.parametrize(
    "tag",
    ["latest", "main", "sha-abc", "sha-ABC1234", "sha-abcg", "sha-" + "f" * 41, "v1.2.3", ""],
)
def test_other_tags_need_allow_tag(tag: str) -> None:
    with pytest.raises(UsageError, match="--allow-tag"):
        check_tag(tag)


def test_allow_tag_still_needs_a_valid_docker_tag() -> None:
    assert check_tag("v1.2.3", allow_tag=True) == "v1.2.3"
    with pytest.raises(UsageError, match="not a valid image tag"):
        check_tag("bad tag", allow_tag=True)


def test_env_example_documents_every_key_with_a_comment() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    for key in KEYS:
        index = next(
            (i for i, line in enumerate(lines) if re.match(rf"#?\s*{key.name}=", line)), None
        )
        assert index is not None, f"{key.name} missing from .env.example"
        line = lines[index]
        assert line.startswith("#") or lines[index - 1].startswith("#"), (
            f"{key.name} has no comment"
        )


def test_env_example_samples_pass_every_environment() -> None:
    from eq_deploy.environments import environment_names, load_environment
    from eq_deploy.settings import sample_values

    for name in environment_names():
        check_settings(sample_values(), load_environment(name).required)
