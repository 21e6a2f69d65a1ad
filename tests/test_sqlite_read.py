"""`paperbridge search` through the stdlib sqlite3 module (bridge/sqlite_read.py) says exactly
what the usual path through the store says: the same output bytes, exit codes and errors.

The read path is taken only for an SQLite store that needs no migration; everything it keeps
in step with the store (schema version, creation note, columns and their conversion, the
acronym table's query) is pinned here against the store's own code.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

import bridge.search as search_module
from bridge import sqlite_read
from bridge.cli import main
from bridge.models import Paper
from bridge.search import fetch_papers
from bridge.store import CREATED_JOB, open_store, schema, sqlite_file
from bridge.store.expansions import ACRONYM, COMPOUND, load_table
from bridge.store.migrations import MIGRATIONS
from bridge.store.search_index import _query
from tests.test_search_budget import BROAD
from tests.test_search_budget import papers as many_papers

FIXTURES = Path(__file__).parent / "fixtures" / "hf"
T0 = datetime(2026, 6, 12, 9, 0, tzinfo=UTC)


def _paper(arxiv_id: str, title: str, abstract: str) -> Paper:
    return Paper(
        source="arxiv",
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract,
        authors=("A. Author",),
        categories=("cs.LG",),
        sources=("arxiv",),
    )


# Papers that define an acronym and write a compound both ways, so queries are widened.
EXTRA = [
    _paper("2601.00001", "Robust models", "We study out-of-distribution (OOD) generalization."),
    _paper("2601.00002", "Shifts", "Out-of-distribution (OOD) detection for a data set."),
    _paper("2601.00003", "Only the acronym", "OOD generalization of language models."),
    _paper("2601.00004", "A dataset", "A new dataset of out of distribution images."),
]

QUERIES = [
    ["model"],
    ["model", "--json"],
    ["model", "--page", "2", "--limit", "3"],
    ["model", "--sort", "newest"],
    ["model", "--sort", "upvotes", "--json"],
    ["OOD"],
    ["out-of-distribution", "--json"],
    ["dataset"],
    ['"language model"'],
    ["diffusion", "-survey"],
    ["upvotes>=5"],
    ["date:2026-06"],
    ["title:model", "OR", "agent"],
    ["zebra"],
    ["zebra", "or", "unicorn"],  # no match: hints
    ["model", "--page", "40"],  # past the last page: exit 1
    ["title:(model"],  # bad query: exit 2
    ["cat:"],
    ["2601.00003"],
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> tuple[Path, str]:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("PAPERBRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PAPERBRIDGE_DATABASE_URL", database_url)
    assert main(["import", *map(str, sorted(FIXTURES.glob("*.json")))]) == 0
    store = open_store(database_url)
    try:
        store.add_papers(EXTRA, now=T0)
    finally:
        store.close()
    return tmp_path, database_url


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["search", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _usual_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_read, "open_search_store", lambda url: None)


def test_search_says_the_same_both_ways(
    workdir: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, url = workdir
    through_sqlite3 = [_run(argv, capsys) for argv in QUERIES]
    if url.startswith("sqlite"):
        assert sqlite_read.open_search_store(url) is not None  # the read path was open to it
    else:
        assert sqlite_read.open_search_store(url) is None  # PostgreSQL: the usual path
    with monkeypatch.context() as patch:
        _usual_path(patch)
        usual = [_run(argv, capsys) for argv in QUERIES]
    for argv, fast, slow in zip(QUERIES, through_sqlite3, usual, strict=True):
        assert fast == slow, argv
    # The queries did reach every kind of answer.
    codes = {code for code, _, _ in usual}
    assert codes == {0, 1, 2}
    assert any("matched out-of-distribution (OOD)" in out for _, out, _ in usual)
    assert any("hint:" in err for _, _, err in usual)
    assert json.loads(usual[1][1])["total"] > 10


def test_a_search_too_broad_says_so_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PAPERBRIDGE_CONFIG", raising=False)
    monkeypatch.delenv("PAPERBRIDGE_DATABASE_URL", raising=False)
    store = open_store(f"sqlite:///{tmp_path / 'data' / 'paperbridge.db'}")
    store.add_papers(many_papers(1200))
    store.close()
    # The papers' cap decides, not the clock: on a loaded machine the 150 ms ran out first
    # on one of the two ways, and the two said "too broad" for different reasons.
    patient = search_module.SearchBudget(seconds=30.0)
    monkeypatch.setitem(search_module.search_store.__kwdefaults__, "budget", patient)
    fast = _run([BROAD], capsys)
    assert fast[0] == 2 and fast[2].startswith("paperbridge: Too broad to search: ")
    _usual_path(monkeypatch)
    assert _run([BROAD], capsys) == fast


def test_the_watchdog_interrupts_a_sqlite3_read(sqlite_url: str) -> None:
    # The search's time bound (bridge.search._bounded) works on this connection too.
    open_store(sqlite_url).close()
    store = sqlite_read.open_search_store(sqlite_url)
    assert store is not None
    never = search_module.SearchBudget(seconds=0.01, clock=lambda: 0.0)
    count = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000)"
        " SELECT count(*) FROM n"
    )
    try:
        with (
            store.engine.connect() as conn,
            search_module._bounded(conn, search_module._Allowance(never)),  # type: ignore[arg-type]
        ):
            with pytest.raises(sqlite3.OperationalError, match="interrupted") as caught:
                _query(conn, count)  # type: ignore[arg-type]
            assert isinstance(caught.value, store.database_errors)
        with store.engine.connect() as conn:
            assert _query(conn, count) == [(10_000_000,)]  # type: ignore[arg-type]
    finally:
        store.close()


def test_a_missing_store_is_reported_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAPERBRIDGE_DATABASE_URL", "sqlite:///nowhere/papers.db")
    code, out, err = _run(["model"], capsys)
    assert (code, out) == (1, "")
    assert "no database at" in err and "papers.db" in err
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_only_a_current_sqlite_store_is_read_through_sqlite3(workdir: tuple[Path, str]) -> None:
    _, url = workdir
    path = sqlite_file(url)
    assert path is not None
    opened = sqlite_read.open_search_store(url)
    assert opened is not None
    opened.close()
    changes = [
        "UPDATE schema_version SET version = version - 1",
        "UPDATE search_index_state SET value = 'other' WHERE key = 'fingerprint'",
        f"DELETE FROM progress WHERE job = '{CREATED_JOB}'",
    ]
    for change in changes:
        with sqlite3.connect(path) as db:
            db.execute("SAVEPOINT before")
            db.execute(change)
            assert sqlite_read._current(db) is False, change
            db.execute("ROLLBACK TO before")
    assert sqlite_read.open_search_store("postgresql://u@localhost/db") is None
    assert sqlite_read.open_search_store(url + "?timeout=5") is None
    assert sqlite_read.open_search_store("sqlite:///no/such/file.db") is None


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///data/paperbridge.db",
        "sqlite:////tmp/x/y.db",
        "sqlite:///./rel.db",
        "sqlite:///a b.db",
    ],
)
def test_the_file_of_a_url_is_the_one_the_store_opens(url: str) -> None:
    assert sqlite_read.sqlite_path(url) == sqlite_file(url)


def test_what_the_read_path_keeps_in_step_with_the_store() -> None:
    assert sqlite_read.SCHEMA_VERSION == len(MIGRATIONS)
    assert sqlite_read.CREATED_JOB == CREATED_JOB
    assert (sqlite_read.ACRONYM, sqlite_read.COMPOUND) == (ACRONYM, COMPOUND)
    assert [name for name, _ in sqlite_read._COLUMNS] == [c.name for c in schema.papers.columns]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_papers_and_acronyms_read_as_the_store_reads_them(workdir: tuple[Path, str]) -> None:
    _, url = workdir
    store = open_store(url)
    fast = sqlite_read.open_search_store(url)
    assert fast is not None
    try:
        with store.engine.connect() as conn:
            seqs = [row[0] for row in conn.exec_driver_sql("SELECT seq FROM papers")]
            usual = fetch_papers(conn, seqs)
            table = load_table(conn)
        with fast.engine.connect() as conn:
            read = fetch_papers(conn, seqs)  # type: ignore[arg-type]
        assert len(usual) == len(seqs) > 30
        assert read == usual
        assert any(s.paper.published_at is not None for s in read.values())
        assert fast.expansion_table() == table
        assert table  # the extra papers define OOD
    finally:
        fast.close()
        store.close()


def test_the_store_package_names_all_its_modules() -> None:
    # bridge/store/__init__.py forwards every other name to bridge.store.core (SQLAlchemy):
    # a module it does not list would load core when imported with `from bridge.store import`.
    import bridge.store

    here = Path(bridge.store.__file__).parent
    modules = {path.stem for path in here.glob("*.py")} - {"__init__"}
    assert modules == bridge.store._MODULES
    assert bridge.store.Store.__module__ == "bridge.store.core"
    with pytest.raises(AttributeError):
        bridge.store.no_such_name  # noqa: B018
