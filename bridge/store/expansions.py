"""Count what the archive defines, in the store's ``term_expansions`` table (migration 9).

``bridge.query.abbreviations`` finds, in a paper's title and abstract, its acronym definitions
("out-of-distribution (OOD)") and the word pairs that may be an open compound ("data set").
This module keeps the counts over the whole archive and reads them back as an
``ExpansionTable`` (``bridge.query.expansions``) for search, feeds and subscriptions.

When mining runs
    * As papers are stored: ``Miner.record`` runs in ``Store.add_papers`` and the bulk writer,
      in the same transaction, on the papers that are new (bench/acronyms.py measures it per
      1,000 papers).
    * Over the whole archive: ``mine_archive`` when migration 9 creates the table, and after
      an import of 10,000 papers or more (``bridge.importer``), rewriting the table.

An import defers its mining to its end (``Store.bulk_writer(defer_mining=True)``)
    An import of 10,000 papers or more ends by mining the whole archive, which rewrites the
    table: mining its batches as they were stored as well was work thrown away (about a
    third of the storing process's CPU). So the bulk writer only notes, per batch, the
    sequence numbers ``record`` would have mined (``DeferredMining``), up to ``HOLD`` papers.
    A smaller import then mines them at its end, batch by batch as they were stored (the
    same calls, in the same order: the same table); a bigger one mines the whole archive.
    Durably, every transaction of such a writer also writes the row ``PENDING`` in the
    ``progress`` table, and the whole-archive mining deletes it in its transaction: an import
    stopped half-way (Ctrl-C) or killed leaves it, so its papers are not lost to mining. The
    next import sees it when it starts and ends by mining the whole archive (the archive's
    own counts, whatever was mined before). Another import's papers stored while a
    whole-archive mining reads (PostgreSQL, two imports at once) may count twice or not at
    all until the next mining, as for papers stored then by any writer.

Compounds as papers arrive
    A pair "a b" is worth counting only if the archive also writes "ab"; counting every
    adjacent pair of every paper would be most of the table for nothing. As papers arrive,
    a pair is counted when its closed form is already in the table, or in the same batch; a
    closed word is counted when its open form is. A compound whose two forms first appear in
    different batches is found by the next full mining (an import of 10,000 papers or more,
    ``Store.mine_expansions``). ``mine_archive`` finds every one: a first pass counts the
    closed words, a second the pairs that close into one.

Reading the table
    ``load_table`` reads every row and applies the rule in ``ExpansionTable.build``. The
    ``Store`` keeps what it read for ``TABLE_TTL`` seconds (other processes add papers too);
    storing papers in this process reads it again at the next use.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import URL, Connection, case, delete, func, select

from bridge.models import Paper
from bridge.query.abbreviations import compound_words, long_key, short_key
from bridge.query.expansions import MIN_DEFINITIONS, ExpansionTable
from bridge.store import schema
from bridge.store.mining import (
    ACRONYM,
    COMPOUND,
    Rows,
    definitions_of,
    first_pass_of_span,
    joinable_set,
    may_close,
    mine,
    pairs_of_span,
    with_compounds,
)

__all__ = [
    "ACRONYM",
    "COMPOUND",
    "HOLD",
    "PENDING",
    "TABLE_TTL",
    "DeferredMining",
    "Miner",
    "clear_pending",
    "mark_pending",
    "mining_pending",
    "archive_rows",
    "archive_rows_in",
    "load_table",
    "mine_archive",
    "paper_definitions",
    "replace_rows",
    "table_of",
]

log = logging.getLogger(__name__)

TABLE_TTL = 30.0
_WRITE_CHUNK = 500
# Papers whose mining an import holds back, by their sequence numbers (a few hundred KiB at
# most); past it the import mines the whole archive at its end. An import of 10,000 new
# papers does that anyway (``bridge.importer.OPTIMIZE_AFTER``).
HOLD = 10_000
# The ``progress`` row saying papers were stored without being mined (see the docstring).
PENDING = "mine-expansions"


def paper_definitions(paper: Paper) -> dict[tuple[str, str], tuple[str, str]]:
    """(short key, long key) -> (short, long) as first written, for each acronym the paper's
    title and abstract define."""
    return definitions_of(paper.title, paper.abstract)


class DeferredMining:
    """The batches a bulk import stored without mining them: for each ``Miner.record`` call
    it made, the sequence numbers of the papers, in the call's order (see the module
    docstring). Kept in step with the writer's transaction: what a rollback takes back is
    dropped (``committed``, ``rolled_back``)."""

    def __init__(self, stale: bool, hold: int | None = None) -> None:
        # Papers were left unmined before this import began (the ``PENDING`` row was there).
        self.stale = stale
        self.hold = HOLD if hold is None else hold
        self.batches: list[list[int]] = []
        self.papers = 0
        # More than ``hold`` papers: their numbers were let go; mine the whole archive.
        self.too_many = False
        self._kept = (0, 0)

    @property
    def whole_archive(self) -> bool:
        """Whether only mining the whole archive mines everything left unmined."""
        return self.stale or self.too_many

    def add(self, seqs: list[int]) -> None:
        self.papers += len(seqs)
        if self.too_many:
            return
        if self.papers > self.hold:
            self.too_many = True  # stays so: mining the whole archive is right in any case
            self.batches = []
            return
        self.batches.append(seqs)

    def committed(self) -> None:
        self._kept = (len(self.batches), self.papers)

    def rolled_back(self) -> None:
        kept, self.papers = self._kept
        del self.batches[kept:]

    def seq_batches(self) -> list[list[int]]:
        """The batches to mine. A savepoint rolled back inside a transaction (a paper the
        database refused) leaves its numbers here, and SQLite gives them again to the papers
        stored next: each number is mined with the last batch that stored it; numbers no
        paper holds are passed over when the papers are read."""
        seen: set[int] = set()
        out: list[list[int]] = []
        for batch in reversed(self.batches):
            out.append([seq for seq in batch if seq not in seen])
            seen.update(batch)
        out.reverse()
        return out


def mark_pending(conn: Connection) -> None:
    """Write the ``PENDING`` row, in the caller's transaction, unless it is there."""
    table = schema.progress
    if conn.execute(select(table.c.job).where(table.c.job == PENDING)).first() is None:
        now = datetime.now(UTC)
        conn.execute(
            table.insert().values(job=PENDING, cursor=f"since {now.isoformat()}", updated_at=now)
        )


def mining_pending(conn: Connection) -> bool:
    """Whether some import stored papers it did not mine (see the module docstring)."""
    table = schema.progress
    return conn.execute(select(table.c.job).where(table.c.job == PENDING)).first() is not None


def clear_pending(conn: Connection) -> None:
    conn.execute(delete(schema.progress).where(schema.progress.c.job == PENDING))


class Miner:
    """Mines papers as they are stored; one per ``Store``."""

    def __init__(self) -> None:
        # Closed compounds the table has a row for (closed key -> open keys), read once.
        self._compounds: dict[str, set[str]] | None = None
        # Spellings of those closed forms met so far ("dataset", "datasets").
        self._spellings: set[str] = set()
        # A bulk writer's connection whose batches are noted, not mined (``deferring``).
        self._deferring: tuple[Connection, DeferredMining] | None = None

    @contextmanager
    def deferring(self, conn: Connection, deferred: DeferredMining) -> Iterator[None]:
        """While this lasts, ``record`` on ``conn`` notes its papers in ``deferred``."""
        self._deferring = (conn, deferred)
        try:
            yield
        finally:
            self._deferring = None

    def record(
        self, conn: Connection, papers: Iterable[Paper], seqs: Sequence[int] | None = None
    ) -> None:
        """Add ``papers``' definitions and compounds to the table, in the caller's
        transaction (see the module docstring for what compounds are counted). ``seqs``: the
        papers' sequence numbers, noted instead while the connection's mining is deferred."""
        deferring = self._deferring
        if deferring is not None and seqs is not None and deferring[0] is conn:
            if seqs:
                deferring[1].add(list(seqs))
            return
        self.record_texts(conn, [(paper.title, paper.abstract) for paper in papers])

    def record_texts(self, conn: Connection, texts: Sequence[tuple[str, str | None]]) -> None:
        """``record`` for papers given by their title and abstract."""
        if not texts:
            return
        known = self._known(conn)
        rows = Rows()
        pairs: Counter[tuple[str, str]] = Counter()
        closed: Counter[str] = Counter()
        for title, abstract in texts:
            for (short, long), (short_text, long_text) in definitions_of(title, abstract).items():
                rows.add((ACRONYM, short, long), short_text, long_text, papers=1)
            paper_pairs, paper_closed = compound_words(f"{title or ''}\n{abstract or ''}")
            # Sorted, as in ``bridge.store.mining.pair_counts``: the first texts of a row
            # must not depend on set order.
            pairs.update(sorted(paper_pairs))
            closed.update(sorted(paper_closed))
        # Set look-ups on the words as written rule out nearly every pair and word before
        # the stemmer runs (on strings it has mostly never seen: most of the cost otherwise).
        spellings = self._spellings
        opened: dict[str, set[str]] = {}
        for (a, b), count in pairs.items():
            joined_text = a + b
            if may_close(joined_text, closed):
                joined = short_key(joined_text)  # closed in this batch
            elif may_close(joined_text, spellings):
                joined = short_key(joined_text)
                if joined not in known:
                    continue
            else:
                continue
            open_key = long_key(f"{a} {b}")
            if open_key == joined:
                continue
            opened.setdefault(joined, set()).add(open_key)
            spellings.add(joined_text)
            rows.add((COMPOUND, joined, open_key), joined_text, f"{a} {b}", papers=count)
        for word, count in closed.items():
            if not may_close(word, spellings):
                continue
            joined = short_key(word)
            for open_key in known.get(joined, set()) | opened.get(joined, set()):
                rows.add((COMPOUND, joined, open_key), word, "", closed=count)
        _upsert(conn, rows.rows())
        for joined, open_keys in opened.items():
            known.setdefault(joined, set()).update(open_keys)

    def _known(self, conn: Connection) -> dict[str, set[str]]:
        if self._compounds is None:
            table = schema.term_expansions
            found: dict[str, set[str]] = {}
            query = select(table.c.short_key, table.c.long_key, table.c.short_text).where(
                table.c.kind == COMPOUND
            )
            for closed, open_key, closed_text in conn.execute(query):
                found.setdefault(closed, set()).add(open_key)
                self._spellings.add(closed_text)
            self._compounds = found
        return self._compounds

    def forget(self) -> None:
        """Read the known compounds again at the next batch (after ``mine_archive``)."""
        self._compounds = None
        self._spellings = set()


def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add the counts to the rows, creating missing ones; the first texts written stay.

    An open form's text is only known from a pair; a closed word seen first leaves it empty,
    and the first pair fills it."""
    if not rows:
        return
    table = schema.term_expansions
    # Each dialect's own upsert, imported here: a command that stores nothing (search) does
    # not pay for loading the PostgreSQL dialect.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect
    else:
        from sqlalchemy.dialects import sqlite as dialect  # type: ignore[no-redef]
    statement = dialect.insert(table)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["kind", "short_key", "long_key"],
        set_={
            "papers": table.c.papers + excluded.papers,
            "closed_papers": table.c.closed_papers + excluded.closed_papers,
            "long_text": case(
                (table.c.long_text == "", excluded.long_text), else_=table.c.long_text
            ),
        },
    )
    for start in range(0, len(rows), _WRITE_CHUNK):
        conn.execute(statement, rows[start : start + _WRITE_CHUNK])


def archive_texts(
    conn: Connection, span: tuple[int, int] | None = None, batch: int = 2000
) -> Iterator[tuple[str, str]]:
    """Every stored paper's title and abstract in ``seq`` order, or those whose ``seq`` is in
    the half-open ``span``."""
    table = schema.papers
    query = select(table.c.title, table.c.abstract).order_by(table.c.seq)
    if span is not None:
        query = query.where(table.c.seq >= span[0], table.c.seq < span[1])
    result = conn.execute(query, execution_options={"yield_per": batch})
    for title, abstract in result:
        yield title or "", abstract or ""


def mine_archive(conn: Connection) -> int:
    """Mine every stored paper and rewrite the table with the counts; returns the rows written."""
    return replace_rows(conn, archive_rows(conn))


def archive_rows(conn: Connection) -> list[dict[str, Any]]:
    """The table's rows as mining every stored paper gives them (reads only)."""
    return mine(lambda: archive_texts(conn)).rows()


def replace_rows(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Rewrite the table with ``rows`` (from ``archive_rows``), in the caller's transaction;
    no paper is left unmined then (``PENDING``)."""
    conn.execute(delete(schema.term_expansions))
    _upsert(conn, rows)
    clear_pending(conn)
    log.info("mined the archive: %d acronym and compound rows", len(rows))
    return len(rows)


# -- the whole archive mined by several processes -------------------------------------------------

# Spans of ``seq`` per process: a few each, so one that the machine slows holds up little.
_SPANS_PER_PROCESS = 3


def archive_rows_in(
    pool: Executor,
    processes: int,
    url: URL,
    conn: Connection,
    meanwhile: Callable[[], object] = lambda: None,
) -> list[dict[str, Any]]:
    """``archive_rows`` with its two passes over the papers shared by the ``processes`` of
    ``pool`` (an import's parsing processes, idle at its end). Each reads a span of ``seq``
    from the database at ``url`` on its own connection; this process adds their counts up in
    ``seq`` order, which gives the rows (and the first texts of each) that reading every
    paper in order here gives. ``conn`` only says which spans there are. ``meanwhile()``
    runs in this process while the first pass does (an import merges its search index)."""
    spans = _seq_spans(conn, max(1, processes) * _SPANS_PER_PROCESS)
    # Pickled to each process: an SQLite file is read there without SQLAlchemy (its
    # URL object would import it), anything else by its URL with the password in it.
    from bridge.store.core import sqlite_file  # core imports this module

    rendered = url.render_as_string(hide_password=False)
    source = sqlite_file(rendered) or rendered
    rows = Rows()
    closed: Counter[str] = Counter()
    first_passes = [pool.submit(first_pass_of_span, source, span) for span in spans]
    meanwhile()
    for future in first_passes:
        span_rows, span_closed = future.result()
        rows.merge(span_rows)
        closed.update(span_closed)
    pairs: Counter[tuple[str, str]] = Counter()
    if closed:
        joinable = joinable_set(closed)
        for counted in [pool.submit(pairs_of_span, source, span, joinable) for span in spans]:
            pairs.update(counted.result())
        del joinable
    return with_compounds(rows, closed, pairs).rows()


def _seq_spans(conn: Connection, parts: int) -> list[tuple[int, int]]:
    """Half-open spans of ``seq`` covering every stored paper, ``parts`` of them at most;
    papers stored after this are left to the next mining, as in ``archive_rows``."""
    table = schema.papers
    low, high = conn.execute(select(func.min(table.c.seq), func.max(table.c.seq))).one()
    if low is None:
        return []
    step = -(-(high + 1 - low) // parts)
    return [(start, min(start + step, high + 1)) for start in range(low, high + 1, step)]


def mine_deferred(conn: Connection, miner: Miner, batches: Sequence[Sequence[int]]) -> int:
    """Mine the papers of ``batches`` (from ``DeferredMining.seq_batches``) as ``record``
    would have as they were stored, batch after batch, in the caller's transaction; returns
    the papers mined."""
    table = schema.papers
    mined = 0
    for batch in batches:
        texts: dict[int, tuple[str, str | None]] = {}
        for start in range(0, len(batch), _WRITE_CHUNK):
            chunk = batch[start : start + _WRITE_CHUNK]
            query = select(table.c.seq, table.c.title, table.c.abstract).where(
                table.c.seq.in_(chunk)
            )
            texts.update((seq, (title, abstract)) for seq, title, abstract in conn.execute(query))
        found = [texts[seq] for seq in batch if seq in texts]
        miner.record_texts(conn, found)
        mined += len(found)
    return mined


def table_of(papers: Sequence[Paper]) -> ExpansionTable:
    """The table ``papers`` alone would give, without a store (benchmarks, tools)."""
    rows = mine(lambda: ((p.title or "", p.abstract or "") for p in papers)).rows()
    return ExpansionTable.build(
        [
            (r["short_key"], r["short_text"], r["long_key"], r["long_text"], r["papers"])
            for r in rows
            if r["kind"] == ACRONYM
        ],
        [
            (
                r["short_key"],
                r["short_text"],
                r["long_key"],
                r["long_text"],
                r["papers"],
                r["closed_papers"],
            )
            for r in rows
            if r["kind"] == COMPOUND and r["long_text"]
        ],
    )


def load_table(conn: Connection) -> ExpansionTable:
    """The table as ``ExpansionTable.build`` reads it: only rows the rule can use (acronyms
    defined often enough, compounds written both ways), and each acronym's total."""
    table = schema.term_expansions
    columns = (
        table.c.kind,
        table.c.short_key,
        table.c.short_text,
        table.c.long_key,
        table.c.long_text,
        table.c.papers,
        table.c.closed_papers,
    )
    useful = select(*columns).where(
        ((table.c.kind == ACRONYM) & (table.c.papers >= MIN_DEFINITIONS))
        | ((table.c.kind == COMPOUND) & (table.c.papers > 0) & (table.c.closed_papers > 0))
    )
    acronyms: list[tuple[str, str, str, str, int]] = []
    compounds: list[tuple[str, str, str, str, int, int]] = []
    for kind, short, short_text, long, long_text, papers, closed in conn.execute(useful):
        if kind == ACRONYM:
            acronyms.append((short, short_text, long, long_text, papers))
        elif long_text:
            compounds.append((short, short_text, long, long_text, papers, closed))
    totals: dict[str, int] = {}
    if acronyms:
        wanted = sorted({row[0] for row in acronyms})
        for start in range(0, len(wanted), _WRITE_CHUNK):
            chunk = wanted[start : start + _WRITE_CHUNK]
            query = (
                select(table.c.short_key, func.sum(table.c.papers))
                .where(table.c.kind == ACRONYM, table.c.short_key.in_(chunk))
                .group_by(table.c.short_key)
            )
            totals.update((short, int(total)) for short, total in conn.execute(query))
    return ExpansionTable.build(acronyms, compounds, totals)
