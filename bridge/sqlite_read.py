"""`paperbridge search` on SQLite through the stdlib ``sqlite3`` module, without SQLAlchemy.

Issue 14 asks for the whole `paperbridge search` process in 200 ms, and importing SQLAlchemy
alone takes most of that. A search reads the store on the DBAPI cursor anyway
(``bridge.store.search_index._query``; ``bridge.search.fetch_papers``): this module gives
``bridge.search.search_store`` the few things it uses of a Store, an engine and a connection,
over one ``sqlite3`` connection, so the same search code gives the same results.

Taken only when it can change nothing: an SQLite file that exists and whose schema, search
index and creation note are current. Anything else (PostgreSQL, a URL with options, a missing
file, a store that needs migrating, any error while looking) returns None from
``open_search_store``, and the command opens the store the usual way, which says what is wrong
or migrates.

What must stay in step with the store (tests/test_sqlite_read.py pins each against it):
``SCHEMA_VERSION`` (len of bridge.store.migrations.MIGRATIONS), ``CREATED_JOB``, the papers
columns and how SQLAlchemy converts them (``_COLUMNS``), and the acronym table's query
(bridge.store.expansions.load_table).
"""

from __future__ import annotations

import logging
import sqlite3
from collections import namedtuple
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bridge.models import StoredPaper
from bridge.query.expansions import EMPTY, MIN_DEFINITIONS, ExpansionTable
from bridge.store.rows import to_stored
from bridge.store.search_index import SearchIndex, fingerprint

log = logging.getLogger(__name__)

# The schema this code reads: the number of bridge.store.migrations.MIGRATIONS. A store at
# another version is opened the usual way (which migrates it, or refuses a newer one).
SCHEMA_VERSION = 12
# bridge.store.core.CREATED_JOB: a store without it is opened the usual way, which notes it.
CREATED_JOB = "store:created"
# bridge.store.expansions: the kinds of rows in term_expansions, and rows per IN list.
ACRONYM = "acronym"
COMPOUND = "compound"
_CHUNK = 500


def _utc_datetime(value: Any) -> datetime | None:
    # SQLAlchemy's SQLite DATETIME (datetime.fromisoformat), then schema.UTCDateTime: stored
    # naive, as UTC.
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _date(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _boolean(value: Any) -> bool | None:
    return None if value is None else bool(value)


# The columns of ``papers`` in the schema's order, and what SQLAlchemy does to each value read
# (None: nothing; TEXT and INTEGER come back from sqlite3 as they are).
_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("seq", None),
    ("arxiv_id", None),
    ("version", None),
    ("title", None),
    ("abstract", None),
    ("authors", None),
    ("published_at", _utc_datetime),
    ("updated_at", _utc_datetime),
    ("listed_on", _date),
    ("listed_on_estimated", _boolean),
    ("sources", None),
    ("categories", None),
    ("primary_category", None),
    ("comment", None),
    ("journal_ref", None),
    ("doi", None),
    ("pdf_url", None),
    ("upvotes", None),
    ("num_comments", None),
    ("github_repo", None),
    ("github_stars", None),
    ("project_page", None),
    ("ai_summary", None),
    ("ai_keywords", None),
    ("thumbnail", None),
    ("organization", None),
    ("first_seen_at", _utc_datetime),
    ("changed_at", _utc_datetime),
    ("revised_at", _utc_datetime),
    ("announced", _boolean),
)


class _PaperReader:
    """``bridge.search.fetch_papers`` for this connection: the same rows, converted as
    SQLAlchemy converts them, built into StoredPapers by the store's own ``to_stored``."""

    def __init__(self) -> None:
        names = [name for name, _ in _COLUMNS]
        self.head = f"SELECT {', '.join(names)} FROM papers WHERE seq IN "
        self.row: Any = namedtuple("_PaperRow", names)  # type: ignore[misc]
        self.converters = [convert for _, convert in _COLUMNS]

    def read(self, conn: ReadConnection, seqs: Sequence[int]) -> dict[int, StoredPaper]:
        out: dict[int, StoredPaper] = {}
        converters = self.converters
        make = self.row
        for start in range(0, len(seqs), _CHUNK):
            # Whole numbers written inline, as bridge.search does.
            listed = ",".join(str(int(seq)) for seq in seqs[start : start + _CHUNK])
            if not listed:
                continue
            for raw in conn.raw.execute(f"{self.head}({listed})"):
                row = make(*[c(v) if c else v for c, v in zip(converters, raw, strict=True)])
                out[row.seq] = to_stored(row)
        return out


class _Dialect:
    """What the search code asks of ``conn.dialect``: its name, and the papers reader."""

    name = "sqlite"

    def __init__(self) -> None:
        self.paper_reader = _PaperReader()


class _DBAPIConnection:
    """``conn.connection`` of a SQLAlchemy connection: a cursor, and the driver's connection
    (the search's progress handler and watchdog use it)."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.dbapi_connection = raw

    def cursor(self) -> sqlite3.Cursor:
        return self.dbapi_connection.cursor()


class ReadConnection:
    """The parts of ``sqlalchemy.Connection`` the search reads with."""

    def __init__(self, raw: sqlite3.Connection, dialect: _Dialect) -> None:
        self.raw = raw
        self.dialect = dialect
        self.connection = _DBAPIConnection(raw)
        self.info: dict[str, Any] = {}


class _Engine:
    """The parts of ``sqlalchemy.Engine`` the search uses: one connection, lent in turn."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        self.dialect = _Dialect()

    @contextmanager
    def connect(self) -> Iterator[ReadConnection]:
        try:
            yield ReadConnection(self.raw, self.dialect)
        finally:
            # As SQLAlchemy's pool does when a connection comes back: end any transaction.
            if self.raw.in_transaction:
                self.raw.rollback()


class SqliteSearchStore:
    """The parts of ``bridge.store.Store`` that ``bridge.search.search_store`` uses."""

    database_errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.engine = _Engine(raw)
        self.search_index = SearchIndex(self.engine)  # type: ignore[arg-type]
        self._expansions: ExpansionTable | None = None

    def expansion_table(self) -> ExpansionTable:
        """As ``Store.expansion_table``: the acronyms and compounds queries expand to; a table
        that cannot be read expands nothing rather than failing the search."""
        if self._expansions is None:
            try:
                self._expansions = load_expansions(self.engine.raw)
            except sqlite3.Error as exc:
                log.warning("cannot read the acronym table: %s", exc.__class__.__name__)
                self._expansions = EMPTY
        return self._expansions

    def close(self) -> None:
        self.engine.raw.close()


def load_expansions(raw: sqlite3.Connection) -> ExpansionTable:
    """bridge.store.expansions.load_table in SQL: the same rows in the same order (the same
    statement as SQLAlchemy compiles it), and each acronym's total."""
    rows = raw.execute(
        "SELECT kind, short_key, short_text, long_key, long_text, papers, closed_papers"
        " FROM term_expansions"
        " WHERE kind = ? AND papers >= ? OR kind = ? AND papers > ? AND closed_papers > ?",
        (ACRONYM, MIN_DEFINITIONS, COMPOUND, 0, 0),
    )
    acronyms: list[tuple[str, str, str, str, int]] = []
    compounds: list[tuple[str, str, str, str, int, int]] = []
    for kind, short, short_text, long, long_text, papers, closed in rows:
        if kind == ACRONYM:
            acronyms.append((short, short_text, long, long_text, papers))
        elif long_text:
            compounds.append((short, short_text, long, long_text, papers, closed))
    totals: dict[str, int] = {}
    wanted = sorted({row[0] for row in acronyms})
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        totals.update(
            (short, int(total))
            for short, total in raw.execute(
                "SELECT short_key, sum(papers) FROM term_expansions"
                f" WHERE kind = ? AND short_key IN ({marks}) GROUP BY short_key",
                (ACRONYM, *chunk),
            )
        )
    return ExpansionTable.build(acronyms, compounds, totals)


def sqlite_path(database_url: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL (relative to the working directory, or
    absolute with four slashes), as SQLAlchemy reads it; None for anything else (another
    database, a driver name, options after ``?``, memory), which is left to the store."""
    prefix = "sqlite:///"
    text = database_url.strip()
    if not text.startswith(prefix):
        return None
    name = text[len(prefix) :]
    if not name or name == ":memory:" or "?" in name or "#" in name or "%" in name:
        return None
    return Path(name).resolve()


def _current(raw: sqlite3.Connection) -> bool:
    """Whether the store needs nothing of ``Store.migrate`` (its ``_up_to_date``)."""
    version = raw.execute("SELECT version FROM schema_version").fetchone()
    if version is None or int(version[0]) != SCHEMA_VERSION:
        return False
    stored = raw.execute(
        "SELECT value FROM search_index_state WHERE key = 'fingerprint'"
    ).fetchone()
    if stored is None or stored[0] != fingerprint(False):
        return False
    created = raw.execute("SELECT job FROM progress WHERE job = ?", (CREATED_JOB,)).fetchone()
    return created is not None


def open_search_store(database_url: str) -> SqliteSearchStore | None:
    """A store to search through ``sqlite3``; None when the usual way must open it (the
    module docstring says when)."""
    path = sqlite_path(database_url)
    if path is None or not path.is_file():
        return None
    try:
        # As the store's connections (bridge.store.core._sqlite_pragmas), less what only
        # writers need: the file is already in WAL mode, set by the process that created it.
        raw = sqlite3.connect(path, check_same_thread=False)
    except sqlite3.Error:
        return None
    try:
        raw.execute("PRAGMA busy_timeout=10000")
        raw.execute("PRAGMA mmap_size=2147418112")
        if _current(raw):
            return SqliteSearchStore(raw)
    except sqlite3.Error as exc:
        log.debug("searching through the store instead: %s", exc)
    raw.close()
    return None
