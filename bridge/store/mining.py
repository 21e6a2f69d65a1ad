"""The counting of an acronym and compound mining, with nothing of SQLAlchemy imported.

``bridge.store.expansions`` keeps the counts in the store; what counts them is here, so that
an import's parsing processes can mine spans of the archive at its end without importing
SQLAlchemy: in each of them that import alone is about 10 MiB of the import's 300 MiB bound
(issue 14), while their parsing never needs it. On SQLite a span is read through the stdlib
``sqlite3`` module; any other database through SQLAlchemy, imported then.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.query.abbreviations import (
    closed_word_set,
    definitions,
    joinable_pairs,
    long_key,
    short_key,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = [
    "ACRONYM",
    "COMPOUND",
    "Key",
    "Rows",
    "definitions_of",
    "first_pass",
    "first_pass_of_span",
    "joinable_set",
    "may_close",
    "mine",
    "pair_counts",
    "pairs_of_span",
    "with_compounds",
]

ACRONYM = "acronym"
COMPOUND = "compound"
# Longer keys are noise (a long form is at most 15 words; the columns hold 200 / 400).
_MAX_SHORT_KEY = 200
_MAX_LONG_KEY = 400

Key = tuple[str, str, str]  # kind, short_key, long_key


def definitions_of(*texts: str | None) -> dict[tuple[str, str], tuple[str, str]]:
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for text in texts:
        if text:
            for short, long in definitions(text):
                key = (short_key(short), long_key(long))
                if key[0] and key[1] and key not in found:
                    found[key] = (short, long)
    return found


class Rows:
    """Counts to add to the table, by row."""

    def __init__(self) -> None:
        self.texts: dict[Key, tuple[str, str]] = {}
        self.papers: Counter[Key] = Counter()
        self.closed: Counter[Key] = Counter()

    def add(self, key: Key, short: str, long: str, papers: int = 0, closed: int = 0) -> None:
        if len(key[1]) > _MAX_SHORT_KEY or len(key[2]) > _MAX_LONG_KEY:
            return
        if len(short) > _MAX_SHORT_KEY or len(long) > _MAX_SHORT_KEY:
            return  # a "word" of hundreds of characters: no form a query should grow by
        self.texts.setdefault(key, (short, long))
        if papers:
            self.papers[key] += papers
        if closed:
            self.closed[key] += closed

    def merge(self, other: Rows) -> None:
        """Add ``other``'s counts; texts first written here stay (``other`` came later)."""
        for key, texts in other.texts.items():
            self.texts.setdefault(key, texts)
        self.papers.update(other.papers)
        self.closed.update(other.closed)

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "kind": key[0],
                "short_key": key[1],
                "long_key": key[2],
                "short_text": short,
                "long_text": long,
                "papers": self.papers[key],
                "closed_papers": self.closed[key],
            }
            for key, (short, long) in sorted(self.texts.items())
        ]


def may_close(joined: str, words: Collection[str]) -> bool:
    """Whether ``words`` holds the closed form, maybe with a plural s on either side."""
    return (
        joined in words or joined + "s" in words or (joined.endswith("s") and joined[:-1] in words)
    )


def mine(texts: Callable[[], Iterable[tuple[str, str]]]) -> Rows:
    """Counts over every (title, abstract) ``texts()`` gives, in two passes: definitions and
    closed words, then the pairs whose closed form the first pass saw."""
    rows, closed = first_pass(texts())
    counted = pair_counts(texts(), joinable_set(closed)) if closed else Counter[tuple[str, str]]()
    return with_compounds(rows, closed, counted)


def first_pass(texts: Iterable[tuple[str, str]]) -> tuple[Rows, Counter[str]]:
    """The acronym rows and the closed words' counts of ``texts``."""
    rows = Rows()
    closed: Counter[str] = Counter()
    for title, abstract in texts:
        for (short, long), (short_text, long_text) in definitions_of(title, abstract).items():
            rows.add((ACRONYM, short, long), short_text, long_text, papers=1)
        closed.update(closed_word_set(f"{title}\n{abstract}"))
    return rows, closed


def joinable_set(closed: Collection[str]) -> set[str]:
    """What a pair may join into, with a plural s on either side (``may_close`` over
    ``closed``), as one set: one look-up per pair instead of three."""
    joinable = set(closed)
    joinable.update(word + "s" for word in closed)
    joinable.update(word[:-1] for word in closed if word.endswith("s"))
    return joinable


def pair_counts(
    texts: Iterable[tuple[str, str]], joinable: Collection[str]
) -> Counter[tuple[str, str]]:
    """The second pass: how many papers write each pair that joins into a ``joinable`` word."""
    pairs: Counter[tuple[str, str]] = Counter()
    for title, abstract in texts:
        # Sorted: a paper writing a compound two ways ("data set", "data sets") gives the row
        # its first texts by this order, which set order (the hash seed) would decide.
        pairs.update(sorted(joinable_pairs(f"{title}\n{abstract}", joinable)))
    return pairs


def with_compounds(rows: Rows, closed: Counter[str], pairs: Counter[tuple[str, str]]) -> Rows:
    """``rows`` (the first pass's) with the compounds of the two passes' counts added."""
    # Group spellings by key: "data sets" and "datasets" count with "data set" and "dataset".
    closed_by_key: dict[str, list[str]] = {}
    for (a, b), count in pairs.items():
        joined = short_key(a + b)
        open_key = long_key(f"{a} {b}")
        if open_key == joined:
            continue
        rows.add((COMPOUND, joined, open_key), a + b, f"{a} {b}", papers=count)
        closed_by_key.setdefault(joined, [])
    joined_texts = {a + b for a, b in pairs}
    for word in closed:
        if may_close(word, joined_texts):  # normalise only the few that may count
            joined = short_key(word)
            if joined in closed_by_key:
                closed_by_key[joined].append(word)
    for key in [k for k in rows.texts if k[0] == COMPOUND]:
        total = sum(closed[w] for w in set(closed_by_key.get(key[1], ())))
        if total:
            rows.closed[key] += total
    return rows


# -- spans of the archive, read in a mining process ------------------------------------------

# Rows read at a time: a few MiB of titles and abstracts.
_READ_BATCH = 2000


def first_pass_of_span(source: Path | str, span: tuple[int, int]) -> tuple[Rows, Counter[str]]:
    """``first_pass`` over the papers whose ``seq`` is in the half-open ``span``, read from
    ``source``: an SQLite file, or the URL of another database."""
    with _span_texts(source, span) as texts:
        return first_pass(texts)


def pairs_of_span(
    source: Path | str, span: tuple[int, int], joinable: Collection[str]
) -> Counter[tuple[str, str]]:
    """``pair_counts`` over the papers of ``span`` (as ``first_pass_of_span``)."""
    with _span_texts(source, span) as texts:
        return pair_counts(texts, joinable)


@contextmanager
def _span_texts(source: Path | str, span: tuple[int, int]) -> Iterator[Iterator[tuple[str, str]]]:
    if isinstance(source, Path):
        # Read-only, and without the store's memory map: its pages would count in this
        # process's resident memory. WAL lets this read beside the importer's writes.
        conn = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            yield _sqlite_texts(conn, span)
        finally:
            conn.close()
        return
    from bridge.store.expansions import archive_texts  # SQLAlchemy: not for SQLite files

    with _engine(source).connect() as sa_conn:
        yield archive_texts(sa_conn, span)


def _sqlite_texts(conn: sqlite3.Connection, span: tuple[int, int]) -> Iterator[tuple[str, str]]:
    # As ``bridge.store.expansions.archive_texts`` reads them, in ``seq`` order.
    cursor = conn.execute(
        "SELECT title, abstract FROM papers WHERE seq >= ? AND seq < ? ORDER BY seq", span
    )
    while batch := cursor.fetchmany(_READ_BATCH):
        for title, abstract in batch:
            yield title or "", abstract or ""


# A mining process's engine for a database URL, made at its first span and kept for the next.
_engines: dict[str, Engine] = {}


def _engine(url: str) -> Engine:
    engine = _engines.get(url)
    if engine is None:
        from sqlalchemy import create_engine

        engine = _engines[url] = create_engine(url)
    return engine
