"""Database URLs as people write them: postgres://, postgresql://, postgresql+DRIVER:// all open
the PostgreSQL store; anything else is refused with the forms that are accepted, never with the
password it was given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.config import load_settings
from bridge.database_urls import database_url
from bridge.errors import ConfigError, StoreError
from bridge.models import Paper
from bridge.startup import load_checked
from bridge.store import open_store, safe_url, sqlite_file
from tests.conftest import FIXTURES


def _scheme(url: str, scheme: str) -> str:
    return scheme + url[url.index("://") :]


@pytest.mark.postgres
@pytest.mark.parametrize(
    "scheme", ["postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2", "POSTGRES"]
)
def test_every_way_of_writing_postgresql_opens_the_postgresql_store(
    postgres_url: str, scheme: str
) -> None:
    store = open_store(_scheme(postgres_url, scheme))
    try:
        assert store.engine.dialect.name == "postgresql"
        assert store.add_papers([Paper("2612.00001", "Written through postgres://")]).new
        assert store.count_papers() == 1
    finally:
        store.close()
    # The settings take it as written, and show it without its password.
    written = _scheme("postgresql://pb:Hunter2@db.example/pb", scheme)
    settings = load_settings(None, {"PAPERBRIDGE_DATABASE_URL": written})
    assert settings.store.database_url == written
    assert "Hunter2" not in safe_url(written)


@pytest.mark.postgres
def test_commands_accept_a_postgres_url(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAPERBRIDGE_DATABASE_URL", _scheme(postgres_url, "postgres"))
    assert main(["import", str(FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json")]) == 0
    sqlite = f"sqlite:///{tmp_path / 'copy.db'}"
    # migrate-data reads URLs of its own, outside the settings: postgres:// there too.
    assert main(["migrate-data", "--to", sqlite]) == 0
    copy = open_store(sqlite)
    try:
        assert copy.count_papers() == 30
    finally:
        copy.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://pb:Hunter2@db/pb", "unsupported database 'mysql'"),
        ("postgresql+mysterydb://pb:Hunter2@db/pb", "unsupported driver 'mysterydb'"),
        ("pb:Hunter2@db/pb", "not a database URL"),
        ("postgresql://pb:Hunter2@db:port/pb", "not a database URL"),
    ],
)
def test_an_unknown_database_is_refused_naming_what_is_accepted(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as refused:
        database_url(url)
    accepted = str(refused.value).split("; use ")[1]
    assert "sqlite:///PATH" in accepted and "postgres://" in accepted and "psycopg" in accepted
    # serve, deliver and check-config read the whole URL before they start.
    with pytest.raises(ConfigError) as caught:
        load_checked(None, {"PAPERBRIDGE_DATABASE_URL": url})
    assert caught.value.key == "store.database_url"
    assert problem in caught.value.problem and "sqlite:///PATH" in caught.value.problem
    with pytest.raises(StoreError, match=problem) as failed:
        open_store(url)
    for message in (str(refused.value), str(caught.value), str(failed.value)):
        assert "Hunter2" not in message
    assert sqlite_file(url) is None


def test_migrate_data_refuses_an_unknown_target_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("PAPERBRIDGE_")]:
        monkeypatch.delenv(name)
    assert main(["import", str(FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json")]) == 0
    capsys.readouterr()
    assert main(["migrate-data", "--to", "mysql://pb:Hunter2@db/pb"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("paperbridge: target: cannot open the database: unsupported database")
    assert "Hunter2" not in err and "Traceback" not in err


def test_sqlite_urls_keep_their_path() -> None:
    assert sqlite_file("sqlite+pysqlite:///data/x.db") == Path("data/x.db").resolve()
    assert sqlite_file("sqlite://") is None and sqlite_file("sqlite:///:memory:") is None
    assert database_url("sqlite+pysqlite:///data/x.db").drivername == "sqlite"


def test_an_sqlite_file_under_a_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create the directory .*notes.txt"):
        open_store(f"sqlite:///{tmp_path / 'notes.txt' / 'sub' / 'pb.db'}")
