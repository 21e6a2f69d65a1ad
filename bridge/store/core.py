"""The paper store: one interface over SQLite (default) and PostgreSQL, via SQLAlchemy Core.

Imported as ``bridge.store`` (the package forwards these names; see its docstring)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from json.encoder import encode_basestring
from operator import attrgetter
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bridge.database_urls import database_url as database_url_of
from bridge.errors import StoreError
from bridge.merge import fold, is_revision, merge
from bridge.models import AddResult, Paper, StoredPaper
from bridge.query.expansions import EMPTY as EMPTY_EXPANSIONS
from bridge.query.expansions import ExpansionTable
from bridge.store import schema
from bridge.store.bulk import BulkInsert
from bridge.store.expansions import (
    TABLE_TTL,
    DeferredMining,
    Miner,
    archive_rows,
    clear_pending,
    load_table,
    mark_pending,
    mine_deferred,
    mining_pending,
    replace_rows,
)
from bridge.store.listing import Listings
from bridge.store.liveness import mark_fresh, ping_on_checkout
from bridge.store.locking import Turns, lock_papers, lock_schema
from bridge.store.migrations import MIGRATIONS, current_version, migrate
from bridge.store.refusal import PipelineEcho, refusal_reason, refused_value, savepoint
from bridge.store.rows import JSON_LIST_COLUMNS as _JSON_LIST_COLUMNS
from bridge.store.rows import PAPER_FIELDS as _PAPER_FIELDS
from bridge.store.rows import to_paper as _to_paper
from bridge.store.rows import to_stored as _to_stored
from bridge.store.search_index import (
    Compound,
    IndexDoc,
    SearchIndex,
    index_doc,
    indexed_fields_differ,
    pending_list_setting,
    run_deferred_setting,
)
from bridge.store.search_index import fingerprint as search_fingerprint

log = logging.getLogger(__name__)

# Rows per statement: well under SQLite's variable limit, large enough to amortise round trips.
_BATCH = 500
# A progress row noting when the store was created (see Store.created_at).
CREATED_JOB = "store:created"
# One filter object: adding it again to psycopg's logger leaves one in place.
_PIPELINE_ECHO = PipelineEcho()


@dataclass(frozen=True, slots=True)
class SourceState:
    source: str
    caught_up_to: date | None
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    # Records the last successful poll could not store (unreadable, or refused by the
    # database), and the first of them as logged: a poll that skips records is not a failure,
    # and not silently fine either.
    skipped_records: int = 0
    skip_problem: str | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _json_list(values: tuple[str, ...]) -> str:
    """``json.dumps(values, ensure_ascii=False, separators=(",", ":"))`` for a tuple of
    strings, in a third of the time."""
    return "[" + ",".join(map(encode_basestring, values)) + "]" if values else "[]"


_paper_values = attrgetter(*_PAPER_FIELDS)


def _to_row(paper: Paper) -> dict[str, Any]:
    row = dict(zip(_PAPER_FIELDS, _paper_values(paper), strict=True))
    for name in _JSON_LIST_COLUMNS:
        row[name] = _json_list(row[name])
    return row


def _among(conn: Connection, column: Any, values: Sequence[str]) -> Any:
    """``column IN values``; on PostgreSQL as ``= ANY(array)``, one parameter instead of
    hundreds: psycopg rewrites a statement's placeholders each time it runs one too long to
    cache (500 of them here), which cost the storing process of an import more than the
    statement's round trip."""
    if conn.dialect.name != "postgresql":
        return column.in_(values)
    from sqlalchemy.dialects.postgresql import ARRAY

    return column == any_(bindparam("among", list(values), type_=ARRAY(column.type)))


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Store:
    """Everything paperbridge keeps. Methods are synchronous and short; call them from
    async code with ``asyncio.to_thread`` when they may touch many rows."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert_papers = BulkInsert(engine, schema.papers, skip=("seq",))
        self.search_index = SearchIndex(engine)
        # The archive by listing day (day, week and month views; feeds of the whole archive).
        self.listings = Listings(engine, _to_stored)
        # Acronyms and compounds the archive defines (bridge/store/expansions.py): mined as
        # papers are stored, read back for queries at most every TABLE_TTL seconds.
        self.expansion_miner = Miner()
        self._expansions: tuple[float, ExpansionTable] | None = None

    @property
    def database_errors(self) -> tuple[type[Exception], ...]:
        """What reading the database may raise: SQLAlchemy's errors and the driver's own
        (search reads on the DBAPI cursor). The sqlite3 read path has its own
        (``bridge.sqlite_read``)."""
        return (SQLAlchemyError, self.engine.dialect.dbapi.Error)  # type: ignore[union-attr]

    # -- lifecycle -------------------------------------------------------------------------

    def migrate(self) -> int:
        """Bring the schema up to date; rebuild the search index if the analyzer changed.

        Processes starting together on a new database (two imports, an import and serve)
        would each create the tables: the changes are made by one at a time, and whoever
        comes second finds them done. An up-to-date schema is seen without taking that lock,
        so a command reading the store never waits for a running import.
        """
        try:
            with self.engine.connect() as conn:
                if self._up_to_date(conn):
                    return len(MIGRATIONS)
            with self.engine.begin() as conn:
                lock_schema(conn)
                version = migrate(conn)
                self.search_index.ensure_current(conn)
                self._note_created(conn)
                return version
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate the database schema: {exc}") from exc

    def _up_to_date(self, conn: Connection) -> bool:
        if current_version(conn) != len(MIGRATIONS):
            return False
        if self.search_index.stored_fingerprint(conn) != search_fingerprint(
            self.search_index.postgres
        ):
            return False
        table = schema.progress
        return (
            conn.execute(select(table.c.job).where(table.c.job == CREATED_JOB)).first() is not None
        )

    def _note_created(self, conn: Connection) -> None:
        # A progress row, not a migration step: nothing in the schema changes, and a store
        # made before this note gets the time it was first opened by a paperbridge keeping it.
        table = schema.progress
        if conn.execute(select(table.c.job).where(table.c.job == CREATED_JOB)).first():
            return
        # Imported here: PostgreSQL's dialect costs a read-only command on SQLite (`search`)
        # tens of milliseconds of start-up (issue 14).
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        now = _utcnow()
        stmt = dialect.insert(table).values(job=CREATED_JOB, cursor=now.isoformat(), updated_at=now)
        # Processes starting together on one database may both get here; one note wins.
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["job"]))

    def created_at(self) -> datetime:
        """When this store was created: a fixed time for what has no time of its own (an empty
        feed's "updated"), the same in every process and after restarts."""
        table = schema.progress
        with self.engine.connect() as conn:
            noted = conn.execute(
                select(table.c.updated_at).where(table.c.job == CREATED_JOB)
            ).scalar()
        if noted is None:
            raise StoreError("the store was opened without migrating it; no creation time")
        return noted  # type: ignore[no-any-return]

    def has_schema(self) -> bool:
        """Whether a paperbridge schema was ever created here (at any version)."""
        from bridge.store.migrations import current_version

        try:
            with self.engine.connect() as conn:
                return current_version(conn) > 0
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the database schema: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except SQLAlchemyError as exc:
            raise StoreError(f"database unreachable: {exc.__class__.__name__}") from exc

    # -- papers ----------------------------------------------------------------------------

    def add_papers(
        self,
        papers: Iterable[Paper],
        *,
        announce: bool | Callable[[Paper], bool] = True,
        now: datetime | None = None,
        index_docs: Sequence[IndexDoc] | None = None,
        announce_known: bool = False,
    ) -> AddResult:
        """Store papers, merging with what is known; return only what is really new.

        A paper already stored is never new again: a later listing (another source, another
        category, a cross-list, a later HF day) only merges facts. A later arXiv version is a
        revision, returned in ``revised`` and never announced as new. ``announce`` decides
        whether a new paper is announced (the first-run and backfill policies say no).
        ``announce_known`` (`import --announce`) also announces a known paper that was stored
        quietly before and that ``announce`` says yes to (counted in ``announced``); a poll
        leaves it quiet, so a backfill is never announced by the next poll re-reading a day.
        Each announcement is logged (``schema.announcements``) in the same transaction, for
        the ledger's intake.

        The search index is updated in the same transaction. ``index_docs``, optional, holds
        ``index_doc(paper)`` for each of ``papers`` in order, worked out elsewhere (the
        importer's parsing process); a paper merged with another in the batch is analyzed here.

        A paper with a value the database refuses is left out and returned in ``refused``
        with the database's reason; the others are stored (see ``_add_accepted``). Any other
        database failure raises StoreError and stores nothing.
        """
        papers = list(papers)
        try:
            try:
                with self.engine.begin() as conn:
                    lock_papers(conn)
                    result, compounds = self._add_batch(
                        conn, papers, announce, now, index_docs, announce_known=announce_known
                    )
            except Exception as exc:
                if not refused_value(exc):
                    raise
                # Rolled back: store the batch again, leaving out what the database refuses.
                with self.engine.begin() as conn:
                    lock_papers(conn)
                    result, compounds = self._add_batch(
                        conn,
                        papers,
                        announce,
                        now,
                        index_docs,
                        separately=True,
                        announce_known=announce_known,
                    )
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot store papers: {exc.__class__.__name__}: {exc}") from exc
        self.search_index.remember(compounds)
        self._expansions = None
        return result

    @contextmanager
    def bulk_writer(
        self,
        commit_every: int = 5000,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        defer_mining: bool = False,
    ) -> Iterator[BulkWriter]:
        """A writer for a bulk import: one connection, one transaction per ``commit_every``
        papers or so. Closing the writer commits what is left; an error rolls back what was
        not committed yet.

        ``defer_mining``: the new papers are not mined for acronyms and compounds as they
        are stored; ``writer.deferred`` notes them, and the caller mines them when it is done
        (``mine_deferred``; see ``bridge.store.expansions``).

        On SQLite the connection gets a larger page cache and checkpoints the WAL less often
        (see ``_BULK_PRAGMAS``); both are put back when the writer closes. There the writer
        also leaves the write lock to other writers in turns (``locking.HOLD``); ``clock``
        and ``sleep`` time those turns.
        """
        try:
            conn = self.engine.connect()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot store papers: {exc.__class__.__name__}: {exc}") from exc
        with conn:
            saved = _set_bulk_pragmas(conn) if self.engine.dialect.name == "sqlite" else {}
            try:
                # SQLite has no queue for its write lock: the writer leaves it in turns.
                turns = Turns(clock, sleep) if self.engine.dialect.name == "sqlite" else None
                long_list = _may_write_long_pending_list(self.search_index, conn)
                writer = BulkWriter(self, conn, commit_every, turns, long_pending_list=long_list)
                if not defer_mining:
                    yield writer
                    writer.commit()
                    return
                stale = mining_pending(conn)
                conn.commit()
                writer.deferred = DeferredMining(stale)
                with self.expansion_miner.deferring(conn, writer.deferred):
                    yield writer
                    writer.commit()
            finally:
                _end_bulk(conn, saved)

    def _add_batch(
        self,
        conn: Connection,
        papers: Iterable[Paper],
        announce: bool | Callable[[Paper], bool],
        now: datetime | None,
        index_docs: Sequence[IndexDoc] | None,
        *,
        separately: bool = False,
        announce_known: bool = False,
    ) -> tuple[AddResult, list[Compound]]:
        """``add_papers`` in the caller's transaction; also returns the compounds stored.

        A value the database refuses raises, and the caller rolls back its transaction.
        ``separately`` is for storing that batch again: its papers are stored under
        savepoints, leaving out those the database refuses (``_add_accepted``). Good batches
        take no savepoint: on SQLite each one would make FTS5 write its pending index as a
        segment of its own (about 5% more work for an import, by instruction count).
        """
        now = now or _utcnow()
        decide = announce if callable(announce) else (lambda _paper, flag=announce: flag)
        incoming_papers = list(papers)
        batch = fold(incoming_papers)
        precomputed: dict[int, IndexDoc] = {}
        if index_docs is not None:
            if len(index_docs) != len(incoming_papers):
                raise ValueError("index_docs must hold one doc per paper")
            precomputed = {id(p): d for p, d in zip(incoming_papers, index_docs, strict=True)}

        def doc_of(paper: Paper) -> IndexDoc:
            # fold() keeps a paper listed once as the very object given.
            found = precomputed.get(id(paper))
            return found if found is not None else index_doc(paper)

        if separately:
            return self._add_accepted(conn, batch, decide, now, doc_of, announce_known)
        return self._add_folded(conn, batch, decide, now, doc_of, announce_known)

    def _add_accepted(
        self,
        conn: Connection,
        batch: dict[str, Paper],
        decide: Callable[[Paper], bool],
        now: datetime,
        doc_of: Callable[[Paper], IndexDoc],
        announce_known: bool,
    ) -> tuple[AddResult, list[Compound]]:
        """Store a folded batch under a savepoint. If the database refuses a value in it,
        the batch is rolled back to the savepoint and stored in halves, and so on down to
        the single papers it refuses, which are left out and returned in ``refused``.

        One bad paper in a batch of 1,000 costs about twenty smaller attempts, about twice
        the batch's work.
        """
        try:
            with savepoint(conn):
                return self._add_folded(conn, batch, decide, now, doc_of, announce_known)
        except Exception as exc:
            if not refused_value(exc):
                raise
            if len(batch) == 1:
                (paper,) = batch.values()
                return AddResult(refused=[(paper, refusal_reason(exc))]), []
        items = list(batch.items())
        half = len(items) // 2
        first, first_compounds = self._add_accepted(
            conn, dict(items[:half]), decide, now, doc_of, announce_known
        )
        rest, rest_compounds = self._add_accepted(
            conn, dict(items[half:]), decide, now, doc_of, announce_known
        )
        joined = AddResult(
            new=sorted(first.new + rest.new, key=attrgetter("seq")),
            revised=first.revised + rest.revised,
            merged=first.merged + rest.merged,
            skipped=first.skipped + rest.skipped,
            refused=first.refused + rest.refused,
            announced=first.announced + rest.announced,
        )
        return joined, first_compounds + rest_compounds

    def _add_folded(
        self,
        conn: Connection,
        batch: dict[str, Paper],
        decide: Callable[[Paper], bool],
        now: datetime,
        doc_of: Callable[[Paper], IndexDoc],
        announce_known: bool = False,
    ) -> tuple[AddResult, list[Compound]]:
        stored_compounds: list[Compound] = []
        new: list[StoredPaper] = []
        revised: list[StoredPaper] = []
        merged = skipped = 0
        # Sequence numbers of the papers announced by this batch, new and known.
        announced: list[int] = []
        announced_known = 0
        for ids in _chunks(list(batch), _BATCH):
            rows = conn.execute(
                select(schema.papers).where(_among(conn, schema.papers.c.arxiv_id, ids))
            ).all()
            known = {row.arxiv_id: row for row in rows}
            inserts: list[dict[str, Any]] = []
            reindex: list[tuple[int, IndexDoc, IndexDoc, int | None]] = []
            revote: list[tuple[int, int | None]] = []
            for arxiv_id in ids:
                incoming = batch[arxiv_id]
                row = known.get(arxiv_id)
                if row is None:
                    values = _to_row(incoming)
                    # A replacement listing of a paper we never saw is old news.
                    fresh = not incoming.is_revision_listing and decide(incoming)
                    values.update(
                        first_seen_at=now,
                        changed_at=now,
                        revised_at=now if incoming.is_revision_listing else None,
                        announced=fresh,
                    )
                    inserts.append(values)
                    continue
                if (
                    announce_known
                    and not row.announced
                    and not incoming.is_revision_listing
                    and decide(incoming)
                ):
                    announced.append(row.seq)
                    announced_known += 1
                stored = _to_paper(row)
                combined = merge(stored, incoming)
                if combined == stored:
                    skipped += 1
                    continue
                revision = is_revision(stored, incoming)
                changes = {k: v for k, v in _to_row(combined).items() if getattr(row, k) != v}
                changes["changed_at"] = now
                if revision:
                    changes["revised_at"] = now
                conn.execute(
                    update(schema.papers).where(schema.papers.c.seq == row.seq).values(**changes)
                )
                if indexed_fields_differ(stored, combined):
                    reindex.append(
                        (row.seq, index_doc(stored), index_doc(combined), combined.upvotes)
                    )
                if combined.upvotes != stored.upvotes:
                    revote.append((row.seq, combined.upvotes))
                if revision:
                    revised.append(StoredPaper(combined, row.seq, row.first_seen_at, row.announced))
                else:
                    merged += 1
            if inserts:
                # Plain executemany: RETURNING would make SQLAlchemy build one
                # multi-row statement per batch, several times slower; one indexed
                # SELECT finds the new sequence numbers instead.
                self._insert_papers.execute(conn, inserts)
                inserted = [values["arxiv_id"] for values in inserts]
                seqs = dict(
                    conn.execute(
                        select(schema.papers.c.arxiv_id, schema.papers.c.seq).where(
                            _among(conn, schema.papers.c.arxiv_id, inserted)
                        )
                    ).all()
                )
                for values in inserts:
                    arxiv_id = values["arxiv_id"]
                    stored_paper = StoredPaper(
                        batch[arxiv_id], seqs[arxiv_id], now, values["announced"]
                    )
                    if batch[arxiv_id].is_revision_listing:
                        revised.append(stored_paper)
                    else:
                        new.append(stored_paper)
                    if values["announced"]:
                        announced.append(seqs[arxiv_id])
                stored_compounds += self.search_index.insert(
                    conn,
                    [(seqs[v["arxiv_id"]], doc_of(batch[v["arxiv_id"]])) for v in inserts],
                    [v["upvotes"] for v in inserts],
                )
                self.expansion_miner.record(
                    conn,
                    [batch[v["arxiv_id"]] for v in inserts],
                    [seqs[v["arxiv_id"]] for v in inserts],
                )
                self.search_index.set_votes(
                    conn, [(seqs[v["arxiv_id"]], v["upvotes"]) for v in inserts], new=True
                )
            stored_compounds += self.search_index.replace(conn, reindex)
            self.search_index.set_votes(conn, revote)
        self._log_announcements(conn, announced, now, announced_known)
        new.sort(key=lambda p: p.seq)
        result = AddResult(
            new=new, revised=revised, merged=merged, skipped=skipped, announced=announced_known
        )
        return result, stored_compounds

    @staticmethod
    def _log_announcements(
        conn: Connection, seqs: Sequence[int], now: datetime, known: int
    ) -> None:
        """Log the papers announced (``seqs``, in order) for the ledger's intake; the known
        ones among them (``known``, announced late) get their ``announced`` flag here too."""
        if not seqs:
            return
        if known:
            papers = schema.papers
            for chunk in _chunks(list(seqs), _BATCH):
                conn.execute(
                    update(papers)
                    .where(papers.c.seq.in_(chunk), papers.c.announced.is_(False))
                    .values(announced=True)
                )
        conn.execute(
            schema.announcements.insert(),
            [{"paper_seq": seq, "announced_at": now} for seq in sorted(seqs)],
        )

    def optimize_search_index(self) -> None:
        """Merge the search index's segments (after a bulk import; see SearchIndex.optimize)."""
        try:
            with self.engine.begin() as conn, _unmapped(conn):
                self.search_index.optimize(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot optimize the search index: {exc}") from exc

    def expansion_table(self) -> ExpansionTable:
        """The acronyms and compounds queries expand to (``bridge.query.expansions``), read
        from the store at most every ``TABLE_TTL`` seconds and after this process stores
        papers. A store that cannot be read expands nothing rather than failing a search."""
        now = time.monotonic()
        cached = self._expansions
        if cached is not None and now - cached[0] < TABLE_TTL:
            return cached[1]
        try:
            with self.engine.connect() as conn:
                table = load_table(conn)
        except SQLAlchemyError as exc:
            # Kept for the same while: a store on an older schema is not asked on every search.
            log.warning("cannot read the acronym table: %s", exc.__class__.__name__)
            table = cached[1] if cached is not None else EMPTY_EXPANSIONS
        self._expansions = (now, table)
        return table

    def mine_expansions(
        self, mine: Callable[[Connection], list[dict[str, Any]]] = archive_rows
    ) -> int:
        """Mine the whole archive again for acronyms and compounds (after an import).

        The papers are read without the writers' lock (at 1M papers that takes minutes), then
        the table is rewritten under it in one short transaction. Counts that papers stored
        meanwhile added may be lost until the next mining; nothing else is. ``mine``: how
        the rows are worked out, on a reading connection (``expansions.archive_rows_in``
        shares the work among an import's processes)."""
        try:
            with self.engine.connect() as conn, _unmapped(conn):
                mined = mine(conn)
            with self.engine.begin() as conn:
                lock_papers(conn)
                rows = replace_rows(conn, mined)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot mine acronyms: {exc.__class__.__name__}: {exc}") from exc
        self.expansion_miner.forget()
        self._expansions = None
        return rows

    def mine_deferred(self, deferred: DeferredMining) -> int:
        """Mine what a bulk writer with ``defer_mining`` stored: its batches as they would
        have been mined as they were stored, or the whole archive (``mine_expansions``) when
        it held too many or an earlier import left papers unmined. Returns the papers mined
        batch by batch (0 for the whole archive)."""
        if deferred.whole_archive:
            self.mine_expansions()
            return 0
        try:
            with self.engine.begin() as conn:
                lock_papers(conn)
                mined = mine_deferred(conn, self.expansion_miner, deferred.seq_batches())
                clear_pending(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot mine acronyms: {exc.__class__.__name__}: {exc}") from exc
        self._expansions = None
        return mined

    def mining_pending(self) -> bool:
        """Whether papers were stored without being mined (an import stopped or killed
        before its end): the next import mines the whole archive."""
        with self.engine.connect() as conn:
            return mining_pending(conn)

    def get_paper(self, arxiv_id: str) -> StoredPaper | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.papers).where(schema.papers.c.arxiv_id == arxiv_id)
            ).first()
        return _to_stored(row) if row else None

    def get_papers_by_seq(self, seqs: Sequence[int]) -> dict[int, StoredPaper]:
        out: dict[int, StoredPaper] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(seqs), _BATCH):
                for row in conn.execute(
                    select(schema.papers).where(schema.papers.c.seq.in_(chunk))
                ):
                    out[row.seq] = _to_stored(row)
        return out

    def recent_papers(
        self, limit: int = 50, *, announced_only: bool = True, before_seq: int | None = None
    ) -> list[StoredPaper]:
        """Newest first, by the order the bridge first stored them."""
        query = select(schema.papers).order_by(schema.papers.c.seq.desc()).limit(limit)
        if announced_only:
            query = query.where(schema.papers.c.announced.is_(True))
        if before_seq is not None:
            query = query.where(schema.papers.c.seq < before_seq)
        with self.engine.connect() as conn:
            return [_to_stored(row) for row in conn.execute(query)]

    def iter_papers(self, batch: int = 1000) -> Iterator[StoredPaper]:
        """Every stored paper in seq order, streamed in batches."""
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(schema.papers)
                    .where(schema.papers.c.seq > last)
                    .order_by(schema.papers.c.seq)
                    .limit(batch)
                ).all()
            if not rows:
                return
            for row in rows:
                yield _to_stored(row)
            last = rows[-1].seq

    def data_version(self) -> str:
        """Changes whenever a paper is added or changed; cheap (two index lookups).

        Caches of rendered output (feeds) key on it, so they are rebuilt when data changes
        and not on every request, in every process sharing the database.
        """
        papers = schema.papers
        with self.engine.connect() as conn:
            seq = conn.execute(select(func.max(papers.c.seq))).scalar()
            changed = conn.execute(select(func.max(papers.c.changed_at))).scalar()
        stamp = changed.isoformat() if isinstance(changed, datetime) else str(changed)
        return f"{seq or 0}-{stamp}"

    def count_papers(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.papers)).scalar_one())

    def is_empty(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(schema.papers.c.seq).limit(1)).first() is None

    # -- conditional GET validators (bridge.fetch.ValidatorStore) --------------------------

    def get_validators(self, url: str) -> tuple[str | None, str | None] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.fetch_validators).where(schema.fetch_validators.c.url == url)
            ).first()
        return (row.etag, row.last_modified) if row else None

    def set_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        table = schema.fetch_validators
        with self.engine.begin() as conn:
            if conn.execute(select(table.c.url).where(table.c.url == url)).first():
                conn.execute(
                    update(table)
                    .where(table.c.url == url)
                    .values(etag=etag, last_modified=last_modified, updated_at=_utcnow())
                )
            else:
                conn.execute(
                    insert(table).values(
                        url=url, etag=etag, last_modified=last_modified, updated_at=_utcnow()
                    )
                )

    # -- per-source state --------------------------------------------------------------------

    def source_state(self, source: str) -> SourceState:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.source_state).where(schema.source_state.c.source == source)
            ).first()
        if row is None:
            return SourceState(source, None, None, None, None, None, 0)
        return SourceState(
            source=row.source,
            caught_up_to=row.caught_up_to,
            last_success_at=row.last_success_at,
            last_attempt_at=row.last_attempt_at,
            last_error=row.last_error,
            last_error_at=row.last_error_at,
            consecutive_failures=row.consecutive_failures or 0,
            skipped_records=row.skipped_records or 0,
            skip_problem=row.skip_problem,
        )

    def all_source_states(self) -> list[SourceState]:
        with self.engine.connect() as conn:
            names = [r[0] for r in conn.execute(select(schema.source_state.c.source))]
        return [self.source_state(name) for name in sorted(names)]

    def _upsert_source_state(self, source: str, **values: Any) -> None:
        table = schema.source_state
        with self.engine.begin() as conn:
            if conn.execute(select(table.c.source).where(table.c.source == source)).first():
                conn.execute(update(table).where(table.c.source == source).values(**values))
            else:
                values.setdefault("consecutive_failures", 0)
                conn.execute(insert(table).values(source=source, **values))

    def record_poll_success(
        self,
        source: str,
        caught_up_to: date | None,
        now: datetime | None = None,
        *,
        skipped: int = 0,
        skip_problem: str | None = None,
    ) -> None:
        """``skipped``: records the poll could not store; ``skip_problem``: the first one."""
        now = now or _utcnow()
        values: dict[str, Any] = dict(
            last_success_at=now,
            last_attempt_at=now,
            consecutive_failures=0,
            skipped_records=skipped,
            skip_problem=skip_problem[:2000] if skip_problem else None,
        )
        if caught_up_to is not None:
            values["caught_up_to"] = caught_up_to
        self._upsert_source_state(source, **values)

    def record_poll_failure(self, source: str, error: str, now: datetime | None = None) -> None:
        now = now or _utcnow()
        failures = self.source_state(source).consecutive_failures + 1
        self._upsert_source_state(
            source,
            last_attempt_at=now,
            last_error=error[:2000],
            last_error_at=now,
            consecutive_failures=failures,
        )

    # -- resumable jobs -----------------------------------------------------------------------

    def get_progress(self, job: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.progress.c.cursor).where(schema.progress.c.job == job)
            ).first()
        return row[0] if row else None

    def set_progress(self, job: str, cursor: str) -> None:
        table = schema.progress
        with self.engine.begin() as conn:
            if conn.execute(select(table.c.job).where(table.c.job == job)).first():
                conn.execute(
                    update(table)
                    .where(table.c.job == job)
                    .values(cursor=cursor, updated_at=_utcnow())
                )
            else:
                conn.execute(insert(table).values(job=job, cursor=cursor, updated_at=_utcnow()))


class BulkWriter:
    """Stores batches of papers for a bulk import (``Store.bulk_writer``)."""

    def __init__(
        self,
        store: Store,
        conn: Connection,
        commit_every: int,
        turns: Turns | None = None,
        *,
        long_pending_list: bool = False,
    ) -> None:
        """``long_pending_list``: PostgreSQL, write each transaction's search docs to a long
        GIN pending list, emptied before it commits (``SearchIndex.bulk_transaction``)."""
        self._store = store
        self._conn = conn
        self._long_pending_list = long_pending_list
        self._commit_every = commit_every
        self._uncommitted = 0
        self._compounds: list[Compound] = []
        self._turns = turns
        # The batches the open transaction holds, to store again if it must be rolled back.
        self._held: list[
            tuple[list[Paper], bool | Callable[[Paper], bool], Sequence[IndexDoc] | None, bool]
        ] = []
        # With ``defer_mining``: the papers stored and not mined (``Store.bulk_writer``).
        self.deferred: DeferredMining | None = None

    def add_papers(
        self,
        papers: Sequence[Paper],
        *,
        announce: bool | Callable[[Paper], bool] = True,
        index_docs: Sequence[IndexDoc] | None = None,
        announce_known: bool = False,
    ) -> AddResult:
        """``Store.add_papers``, in the writer's transaction: committed with the next
        ``commit_every`` papers or when the writer closes, not before.

        Each batch is treated exactly as ``add_papers`` treats it, and a later batch sees what
        the earlier ones stored, so the store ends up as after one ``add_papers`` call per
        batch. Committing once for several batches saves most of what a commit costs (SQLite
        writes the FTS5 index's new segment and merges segments then). A paper the database
        refuses is left out as ``add_papers`` leaves it out; the rest of the batch and what
        the transaction holds from earlier batches are kept.
        """
        papers = list(papers)
        try:
            if not self._conn.in_transaction():
                if self._turns is None:
                    lock_papers(self._conn)
                else:
                    self._turns.take(self._conn)
                self._begin_transaction()
            try:
                result, compounds = self._store._add_batch(
                    self._conn, papers, announce, None, index_docs, announce_known=announce_known
                )
            except Exception as exc:
                if not refused_value(exc):
                    raise
                result, compounds = self._add_separately(
                    papers, announce, index_docs, announce_known
                )
        except SQLAlchemyError as exc:
            self._rollback()
            raise StoreError(f"cannot store papers: {exc.__class__.__name__}: {exc}") from exc
        self._held.append((papers, announce, index_docs, announce_known))
        self._compounds += compounds
        self._uncommitted += len(papers)
        if self._uncommitted >= self._commit_every or (self._turns and self._turns.held_long()):
            self.commit()
        return result

    def _add_separately(
        self,
        papers: list[Paper],
        announce: bool | Callable[[Paper], bool],
        index_docs: Sequence[IndexDoc] | None,
        announce_known: bool,
    ) -> tuple[AddResult, list[Compound]]:
        """A batch with a value the database refused, which ended the transaction: roll it
        back, store the batches it held again (the database took them), then this one
        without the papers the database refuses. Rare: the parsers' limits come first."""
        self._rollback()
        # The rollback let go of the write lock; the transaction that stores again takes it
        # anew, so nobody else stores papers in between.
        lock_papers(self._conn)
        self._begin_transaction()
        self._compounds = []
        for held_papers, held_announce, held_docs, held_known in self._held:
            _result, compounds = self._store._add_batch(
                self._conn, held_papers, held_announce, None, held_docs, announce_known=held_known
            )
            self._compounds += compounds
        return self._store._add_batch(
            self._conn,
            papers,
            announce,
            None,
            index_docs,
            separately=True,
            announce_known=announce_known,
        )

    def _begin_transaction(self) -> None:
        """What each of the writer's transactions does first, once it holds the write lock."""
        if self._long_pending_list:
            self._store.search_index.bulk_transaction(self._conn)
        if self.deferred is not None:
            mark_pending(self._conn)  # with the papers it stores unmined

    def _rollback(self) -> None:
        """Roll the transaction back, and with it what the deferred mining noted in it."""
        self._conn.rollback()
        if self.deferred is not None:
            self.deferred.rolled_back()

    def commit(self) -> None:
        try:
            if self._long_pending_list and self._conn.in_transaction():
                self._store.search_index.end_bulk_transaction(self._conn)
            self._conn.commit()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot store papers: {exc.__class__.__name__}: {exc}") from exc
        if self._turns is not None:
            self._turns.released()
        if self.deferred is not None:
            self.deferred.committed()
        self._store.search_index.remember(self._compounds)
        self._store._expansions = None
        self._compounds = []
        self._held = []
        self._uncommitted = 0


# Connection settings for a bulk import on SQLite. A 32 MiB page cache (instead of 2 MiB)
# keeps the papers table's indexes and the FTS5 index structure in memory from one
# transaction to the next (at 100,000 papers, storing took half the wall time); 64 MiB cost
# the storing process the same CPU over a 100,000-paper import and 30 MiB more memory
# (bench/RESULTS.md, "Import memory"). Checkpointing
# the WAL every 10,000 pages (about 40 MB) instead of every 1,000 copies each often-rewritten
# page into the database file ten times less often. Durability stays what it always is
# (journal_mode=WAL, synchronous=NORMAL; see _sqlite_pragmas): a committed transaction
# survives a crash of the process; a crash of the OS can lose those written since the last
# checkpoint, never corrupts the database, and importing again restores them. No memory map:
# an import reads pages all over a growing file, and mapped they would swell the process's
# resident memory with it (the page cache above is the bounded way to keep them at hand).
_BULK_PRAGMAS = {"cache_size": -32768, "wal_autocheckpoint": 10_000, "mmap_size": 0}


def _may_write_long_pending_list(index: SearchIndex, conn: Connection) -> bool:
    """Whether a bulk writer on ``conn`` writes with a long GIN pending list (PostgreSQL,
    and a role that may empty it); asked before the writer's first transaction."""
    if not index.postgres:
        return False
    try:
        return index.may_empty_pending_list(conn)
    finally:
        conn.rollback()


@contextmanager
def _unmapped(conn: Connection) -> Iterator[None]:
    """SQLite reads without its memory map while this lasts: for a read of the whole store
    (the FTS5 merge, mining every paper), whose mapped pages would all count in the
    process's resident memory, as big as the store, after an import that stayed flat."""
    if conn.dialect.name != "sqlite":
        yield
        return
    saved = conn.exec_driver_sql("PRAGMA mmap_size").scalar()
    conn.exec_driver_sql("PRAGMA mmap_size=0")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA mmap_size={int(saved or 0)}")


def _set_bulk_pragmas(conn: Connection) -> dict[str, Any]:
    saved = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in _BULK_PRAGMAS}
    for name, value in _BULK_PRAGMAS.items():
        conn.exec_driver_sql(f"PRAGMA {name}={int(value)}")
    conn.commit()
    return saved


def _end_bulk(conn: Connection, saved: dict[str, Any]) -> None:
    """Roll back what an error left uncommitted, and put the pooled connection back as it
    was for whoever uses it next (or discard it)."""
    try:
        conn.rollback()
        for name, value in saved.items():
            conn.exec_driver_sql(f"PRAGMA {name}={int(value)}")
        conn.commit()
    except SQLAlchemyError:
        conn.invalidate()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets the web server read while the poller writes; NORMAL is durable across
    # process crashes (only an OS crash can lose the last transactions).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Reads through a memory map rather than a read() per page: a search touches a few dozen
    # pages scattered over a large file, and the calls cost more than SQLite's work on them
    # (a first search at 1M papers: 6.5 ms without, 4.4 ms with). 2 GiB is SQLite's cap.
    cursor.execute("PRAGMA mmap_size=2147418112")
    cursor.close()


def _postgres_session(dbapi_conn: Any, _record: Any) -> None:
    """Settings for each new PostgreSQL connection, kept for its life (committed).

    No JIT compilation: the store's statements are short, and at a million papers the
    planner's cost estimate for a search (a walk of the newest papers, testing each doc)
    passes ``jit_above_cost``, so the server spent tens of milliseconds compiling code for a
    statement that runs in one or two.
    """
    with dbapi_conn.cursor() as cursor:
        cursor.execute("SET jit = off")
        # Papers stored leave the search index's pending list short (see the setting).
        cursor.execute(pending_list_setting())
    dbapi_conn.commit()


def sqlite_file(database_url: str) -> Path | None:
    """The absolute path of the file an SQLite URL names; None for other databases and for
    an in-memory SQLite database, and for a URL the store refuses (opening it says why)."""
    try:
        url = database_url_of(database_url)
    except ValueError:
        return None
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve()


def safe_url(database_url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(database_url.strip()).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"  # what was given may hold a password


def _connection_problem(exc: SQLAlchemyError) -> str:
    """The driver's own first line ("Connection refused", "role "x" does not exist", "unable
    to open database file"), without SQLAlchemy's class name, SQL and background link."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    first = text.splitlines()[0] if text else exc.__class__.__name__
    return " ".join(first.removeprefix("connection failed: ").split())


def open_store(database_url: str, *, migrate_schema: bool = True) -> Store:
    """Open (and by default migrate) the store at ``database_url``.

    Raises StoreError "cannot connect to the database at URL: why" when the database cannot
    be reached at all, before any migration is tried: a refused connection, a wrong password
    or an unwritable SQLite directory is a connection problem, not a schema problem.
    """
    try:
        url = database_url_of(database_url)
    except ValueError as exc:
        raise StoreError(f"cannot open the database: {exc}") from None
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            folder = Path(url.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the directory {folder} for the database: {exc.strerror or exc}"
                ) from None
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # Connections are pinged on checkout as ``pool_pre_ping`` would, except for searches,
        # which retry on a dead connection instead of paying a round trip (bridge/store/liveness.py).
        engine = create_engine(url)
        event.listen(engine, "connect", _postgres_session)
        event.listen(engine, "connect", mark_fresh)
        event.listen(engine, "checkout", ping_on_checkout)
        event.listen(engine, "before_cursor_execute", run_deferred_setting)
        logging.getLogger("psycopg").addFilter(_PIPELINE_ECHO)
    store = Store(engine)
    try:
        try:
            # The pool keeps this connection: the migration below reuses it.
            with engine.connect():
                pass
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot connect to the database at {safe_url(database_url)}:"
                f" {_connection_problem(exc)}"
            ) from exc
        if migrate_schema:
            store.migrate()
    except BaseException:
        store.close()
        raise
    return store
