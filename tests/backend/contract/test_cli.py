"""`python -m eq_backend migrate|seed|db-check` in-process: exit codes and one-line errors."""

import sqlite3

import msgspec
import pytest
from eq_backend import cli
from eq_backend.settings import Settings
from eq_cluster.services import free_port


@pytest.fixture
def cli_env(monkeypatch, tmp_path, base_env):
    """A clean process environment (only what the test sets) and a cwd with no .env."""
    for field in msgspec.structs.fields(Settings):
        monkeypatch.delenv(field.name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)

    def apply(**env: str) -> None:
        for k, v in env.items():
            monkeypatch.setenv(k, v)

    return apply


def test_migrate_seed_and_db_check_on_sqlite(cli_env, tmp_path, capsys) -> None:
    db = tmp_path / "cli.db"
    cli_env(DATABASE_URL=f"sqlite:///{db}")
    assert cli.main(["migrate"]) == 0
    assert "alembic head:" in capsys.readouterr().out
    assert cli.main(["seed"]) == 0
    assert "seeded: 8 rows inserted" in capsys.readouterr().out
    assert cli.main(["seed"]) == 0
    assert "seeded: 0 rows inserted" in capsys.readouterr().out
    assert cli.main(["db-check"]) == 0
    out = capsys.readouterr().out
    assert "database revision:" in out
    assert "build head:" in out
    conn = sqlite3.connect(db)
    topics = [r[0] for r in conn.execute("SELECT name FROM topics ORDER BY id")]
    conn.close()
    assert topics == ["Tình yêu", "Công sở", "Gia đình", "Bạn bè"]


def test_db_check_flags_an_unknown_revision(cli_env, tmp_path, capsys) -> None:
    db = tmp_path / "future.db"
    cli_env(DATABASE_URL=f"sqlite:///{db}")
    assert cli.main(["migrate"]) == 0
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    conn.close()
    capsys.readouterr()
    assert cli.main(["db-check"]) == 3
    assert "ffffffffffff" in capsys.readouterr().out


def test_missing_settings_outside_dev_fail_in_one_line(cli_env, capsys) -> None:
    cli_env(ENVIRONMENT="production")
    assert cli.main(["migrate"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        assert name in err


@pytest.mark.parametrize("value", ["*", "http://a.test, http://b.test", '["http://a.test"]'])
def test_cors_origins_forms_do_not_crash(cli_env, tmp_path, value) -> None:
    cli_env(DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}", CORS_ORIGINS=value)
    assert cli.main(["migrate"]) == 0


def test_malformed_cors_origins_is_one_line_naming_the_variable(cli_env, capsys) -> None:
    cli_env(CORS_ORIGINS='["unterminated')
    assert cli.main(["migrate"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "CORS_ORIGINS" in err


def test_migrate_against_an_unreachable_database_fails_in_one_line(cli_env, capsys) -> None:
    cli_env(DATABASE_URL=f"postgresql://postgres:secret-pw@127.0.0.1:{free_port()}/nowhere")
    assert cli.main(["migrate"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "secret-pw" not in err
    assert cli.main(["seed"]) == 1
    assert cli.main(["db-check"]) == 1


def test_old_env_file_is_read(cli_env, tmp_path, capsys) -> None:
    """An old service's .env (postgresql:// URL, JSON CORS list) works unchanged."""
    (tmp_path / ".env").write_text(
        f"DATABASE_URL=sqlite:///{tmp_path / 'envfile.db'}\n"
        'CORS_ORIGINS=["http://localhost:3000"]\n'
        "ACCESS_TOKEN_EXPIRE_MINUTES=30\n"
    )
    assert cli.main(["migrate"]) == 0
    assert (tmp_path / "envfile.db").exists()
