"""`paperbridge import`: read saved HF JSON/HTML and arXiv RSS/API XML files into the store."""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path

from bridge import import_pieces
from bridge.errors import StoreError
from bridge.import_pieces import Parsed, Piece, file_pieces, parse_piece
from bridge.models import AddResult, Paper
from bridge.processes import end_with_parent, starting_helpers
from bridge.sources.base import log_problems, refusals
from bridge.store import BulkWriter, Store, sqlite_file
from bridge.store.expansions import DeferredMining, archive_rows_in
from bridge.store.search_index import IndexDoc

log = logging.getLogger(__name__)

# Papers per transaction, about: a commit costs SQLite a new FTS5 segment and its merging,
# about 35 us a paper with one batch per commit, about 13 us with five.
TRANSACTION = 5000
# New papers from one import after which the search index is merged (a few seconds per
# 100,000 stored papers).
OPTIMIZE_AFTER = 10_000


@dataclass(slots=True)
class ImportCounts:
    new: int = 0
    merged: int = 0
    skipped: int = 0
    # Papers announced by this import (`--announce`): new ones, and known ones that had been
    # stored quietly (by a backfill or a plain import) and were never announced.
    announced: int = 0
    problems: int = 0  # records (or pages) that could not be read
    unreadable_files: int = 0
    unstorable: int = 0  # records the database refused
    fields_fixed: int = 0  # fields dropped or cut to fit (bridge.sources.limits)
    # Files stored whole: all of them, unless the import was stopped; then also the file
    # it stopped in and how many of its papers were stored.
    files: int = 0
    stopped_in: tuple[Path, int] | None = None


# What a directory given to `import` contributes: the files saved listings are kept as.
LISTING_SUFFIXES = frozenset({".json", ".xml", ".atom", ".rss", ".html", ".htm"})


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and for a directory every listing file under it (by suffix, in name
    order): a folder of saved responses imports in one go, its notes and READMEs left out."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                child
                for child in path.rglob("*")
                if child.suffix.lower() in LISTING_SUFFIXES and child.is_file()
            )
            if found:
                log.info("import: %s: %d listing files", path, len(found))
            else:
                log.warning("import: %s holds no listing files (%s)", path, _suffixes())
            files += found
        else:
            files.append(path)
    return files


def _suffixes() -> str:
    return ", ".join(sorted(LISTING_SUFFIXES))


def _joined(
    parsed_pieces: Iterable[tuple[Path, bool, Parsed]],
) -> Iterator[tuple[Path, bool, Parsed]]:
    """Consecutive parsed pieces of one file joined into batches of up to ``BATCH`` papers: a
    big file is parsed in small pieces (a parsing process's memory follows its piece) but
    stored in whole batches (a batch costs the storing process the same whatever its size,
    and mining as papers are stored looks at a batch at a time)."""
    held: tuple[Path, bool, Parsed] | None = None
    for path, last, parsed in parsed_pieces:
        if held is not None:
            held_path, _, (rows, docs, problems, error, name) = held
            if (
                held_path == path
                and error is None
                and parsed[3] is None
                and len(rows) + len(parsed[0]) <= import_pieces.BATCH
            ):
                parsed = (rows + parsed[0], docs + parsed[1], problems + parsed[2], None, name)
            else:
                yield held
        held = (path, last, parsed)
        if last:  # nothing of its file follows
            yield held
            held = None
    if held is not None:
        yield held


def _store(
    writer: BulkWriter | _StoppableWriter,
    parsed: Parsed,
    counts: ImportCounts,
    announce: bool,
    progress: Callable[[int], None],
) -> None:
    rows, docs, problems, error, name = parsed
    if error is not None:
        counts.unreadable_files += 1
        log.error("import: %s", error)
        return
    log_problems(problems)
    fixed = sum(problem.field is not None for problem in problems)
    counts.fields_fixed += fixed
    counts.problems += len(problems) - fixed
    for start in range(0, len(rows), import_pieces.BATCH):
        chunk = [Paper(*row) for row in rows[start : start + import_pieces.BATCH]]
        chunk_docs = [IndexDoc(*doc) for doc in docs[start : start + import_pieces.BATCH]]
        # With --announce, papers stored quietly before are announced too: seeding the archive
        # first and announcing it afterwards is how a new user brings in a year of history.
        result = writer.add_papers(
            chunk, announce=announce, index_docs=chunk_docs, announce_known=announce
        )
        counts.new += len(result.new)
        counts.announced += sum(stored.announced for stored in result.new) + result.announced
        counts.merged += result.merged + len(result.revised)
        counts.skipped += result.skipped
        if result.refused:
            counts.unstorable += len(result.refused)
            log_problems(refusals(result.refused, name))
        progress(len(chunk))


def import_paths(
    store: Store,
    paths: Sequence[Path],
    *,
    announce: bool = False,
    progress: Callable[[int], None] = lambda _n: None,
    parallel: bool | None = None,
    workers: int | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> ImportCounts:
    """Parse and store files; a bad record or file is skipped and logged, the rest kept.

    With several files, or a big one, ``workers`` processes (by default one per core) parse
    files, or pieces of ``BATCH`` records of a file bigger than ``STREAM_ABOVE``, and work
    out their search index text, two pieces ahead each, while this process only cuts the
    big files' records out and stores (SQLite takes one writer): memory does not grow with
    the size of a file. Batches of ``BATCH`` papers (never two files in one) are stored as
    ``add_papers`` would store them, about ``TRANSACTION`` papers per transaction.

    Once ``stop()`` says so (a signal arrived, see ``bridge.processes.StopSignals``), the
    import ends before its next batch: every batch stored so far is committed, none is
    stored in part; ``counts.files`` and ``counts.stopped_in`` say how far it got. Importing
    the same files again continues: what is stored already is skipped.
    """
    with _one_import_at_a_time(store):
        return _import(store, paths, announce, progress, parallel, workers, stop)


@contextmanager
def _one_import_at_a_time(store: Store) -> Iterator[None]:
    """Refuse to start while another import writes to the same SQLite database.

    SQLite takes one writer at a time: a second import could only wait, for as long as the
    first takes, with its parsing processes started and nothing to show; and the two would
    hand the write lock back and forth by polling for it (see store.locking.HOLD), each at
    half speed. Refused at once instead, before anything is parsed or written, it says what
    runs; importing is idempotent, so running it afterwards loses nothing. The lock is an
    flock on a file beside the database: the system drops it when its process ends, however
    it ends, so a killed import never blocks the next. PostgreSQL queues writers fairly:
    there imports run side by side, their transactions in turn (``store.locking``).
    """
    database = sqlite_file(str(store.engine.url))
    if database is None:
        yield
        return
    lock_path = database.with_name(database.name + "-import.lock")
    with open(lock_path, "a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip()
            running = f"another import (process {holder})" if holder else "another import"
            raise StoreError(
                f"{running} is writing to {database}; SQLite stores one import at a time:"
                " run this one again when it has finished"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield
        finally:
            lock.truncate(0)


def _import(
    store: Store,
    paths: Sequence[Path],
    announce: bool,
    progress: Callable[[int], None],
    parallel: bool | None,
    workers: int | None,
    stop: Callable[[], bool],
) -> ImportCounts:
    if parallel is None:
        parallel = len(paths) > 1 or any(map(_is_big, paths))
    if workers is None:
        workers = default_workers()
    with _parsing_pool(workers) if parallel else nullcontext() as pool:
        return _import_with(store, paths, announce, progress, pool, workers, stop)


def _import_with(
    store: Store,
    paths: Sequence[Path],
    announce: bool,
    progress: Callable[[int], None],
    pool: ProcessPoolExecutor | None,
    workers: int,
    stop: Callable[[], bool],
) -> ImportCounts:
    """``_import`` with its parsing processes (``pool``), or none: this process parses."""
    counts = ImportCounts()
    in_file = 0
    current: Path | None = None

    def stored(papers: int) -> None:
        nonlocal in_file
        in_file += papers
        progress(papers)

    parse = partial(parse_piece, tsvectors=store.engine.dialect.name == "postgresql")
    pieces = (piece for path in paths for piece in file_pieces(path))
    parsed_pieces = (
        _parse_in_workers(parse, pieces, pool, workers, stop)
        if pool is not None
        else ((piece.path, piece.last, parse(piece)) for piece in pieces)
    )
    batches = _joined(parsed_pieces)
    # Mined at the end, not batch by batch (see _mine_at_the_end).
    with store.bulk_writer(commit_every=TRANSACTION, defer_mining=True) as bulk:
        writer = _StoppableWriter(bulk, stop)
        try:
            for path, last, parsed in batches:
                if path is not current:
                    current, in_file = path, 0
                _store(writer, parsed, counts, announce, stored)
                if last:
                    counts.files += 1
                    current = None
                if stop():
                    break
        except _Stopped:
            # Raised before a batch: the writer commits those stored as it closes.
            if in_file and current is not None:
                counts.stopped_in = (current, in_file)
        finally:
            if isinstance(parsed_pieces, Generator):
                parsed_pieces.close()  # no piece is parsed any more
    whole = counts.files == len(paths)
    assert bulk.deferred is not None
    _mine_at_the_end(store, bulk.deferred, counts, whole, pool, workers)
    return counts


def _mine_at_the_end(
    store: Store,
    deferred: DeferredMining,
    counts: ImportCounts,
    whole: bool,
    pool: ProcessPoolExecutor | None,
    workers: int,
) -> None:
    """Mine the papers the import stored for acronyms and compounds, once, at its end.

    After 10,000 new papers the whole archive: an open compound whose two forms came in
    different batches is only found so, and it rewrites the table (mining the batches too,
    as they were stored, was work thrown away). The parsing processes, idle by then, share
    its reading and counting (``expansions.archive_rows_in``), which gives the same table,
    while this process merges the search index. After fewer, the batches as they were
    stored, which gives the table mining them then would have given. An import stopped
    half-way mines its batches too (a second or so), unless they were more than it could
    note (``expansions.HOLD``): the ``progress`` row ``expansions.PENDING`` then says papers
    are unmined, and the import run again to continue mines the whole archive at its end.
    """
    if counts.new >= OPTIMIZE_AFTER and whole:
        # Batches leave the search index in many segments; one merge makes searches faster.
        # Not after a stop: that should end the import soon, and the run completing it
        # merges. The merge writes the index alone, so it runs while the processes mine.
        merge = store.optimize_search_index
        if pool is None:
            merge()
            store.mine_expansions()
        else:
            url = store.engine.url
            store.mine_expansions(partial(archive_rows_in, pool, workers, url, meanwhile=merge))
    elif whole or not deferred.whole_archive:
        store.mine_deferred(deferred)
    else:
        log.info(
            "import: %d papers stored without being mined for acronyms; the import run"
            " again to continue mines them",
            deferred.papers,
        )


class _Stopped(Exception):
    """``stop()`` said so before a batch was stored."""


class _StoppableWriter:
    """A bulk writer that raises ``_Stopped`` instead of storing a batch once ``stop()``
    says so: an import ends between two batches, and a file whose last batch was stored
    counts as stored whole."""

    def __init__(self, writer: BulkWriter, stop: Callable[[], bool]) -> None:
        self._writer = writer
        self._stop = stop

    def add_papers(
        self,
        papers: Sequence[Paper],
        *,
        announce: bool,
        index_docs: Sequence[IndexDoc],
        announce_known: bool = False,
    ) -> AddResult:
        if self._stop():
            raise _Stopped
        return self._writer.add_papers(
            papers, announce=announce, index_docs=index_docs, announce_known=announce_known
        )


def default_workers() -> int:
    """Parsing processes when the caller does not say: one per core. The storing process
    waits on the parsers and on SQLite part of the time, so a parser beside it on its core
    pays: on two cores, two parsers imported 13% faster than one (bench/RESULTS.md)."""
    return max(1, os.cpu_count() or 2)


def _is_big(path: Path) -> bool:
    try:
        return path.stat().st_size > import_pieces.STREAM_ABOVE
    except OSError:
        return False


@contextmanager
def _parsing_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """``workers`` parsing processes for one import: they parse its pieces, then share the
    mining at its end. They end with the block, or with this process however it ends
    (``end_with_parent``)."""
    # spawn, not fork: forking a process that runs threads (the progress bar, a server) is
    # unsafe and deprecated.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=end_with_parent,
        initargs=(os.getpid(),),
    )
    try:
        # Every process starts now, with the signals held (see starting_helpers), and not
        # later at a submit outside this: the pool starts one at a submit that finds none
        # idle, so one no-op task each, submitted at once, starts them all.
        with starting_helpers():
            for _ in range(workers):
                pool.submit(os.getpid)
        yield pool
    finally:
        # Pieces not started yet are dropped; those being parsed are finished first (a
        # piece parses in milliseconds to a second).
        pool.shutdown(wait=True, cancel_futures=True)


def _parse_in_workers(
    parse: Callable[[Piece], Parsed],
    pieces: Iterable[Piece],
    pool: ProcessPoolExecutor,
    workers: int,
    stop: Callable[[], bool],
) -> Generator[tuple[Path, bool, Parsed], None, None]:
    """Parsed pieces in order, with their file and whether they end it, from the ``workers``
    processes of ``pool`` kept two pieces ahead each. Ends early once ``stop()`` says so;
    the pieces not started yet are dropped when the generator ends."""
    # Pieces in flight (their records held here and in a parsing process): enough that no
    # process waits for the next, few enough that memory stays flat.
    ahead = 2 * workers
    pending: deque[tuple[Path, bool, Future[Parsed]]] = deque()
    try:
        pieces = iter(pieces)
        for piece in islice(pieces, ahead):
            pending.append((piece.path, piece.last, pool.submit(parse, piece)))
        while pending:
            path, last, future = pending.popleft()
            parsed = _result(future, stop)
            if parsed is None:
                return
            # The next piece is cut out while the parsing processes work.
            for piece in islice(pieces, 1):
                pending.append((piece.path, piece.last, pool.submit(parse, piece)))
            yield path, last, parsed
    finally:
        for _path, _last, future in pending:
            future.cancel()


# How often a wait for a parsed file looks at stop(), in seconds.
_STOP_CHECK = 0.1


def _result(future: Future[Parsed], stop: Callable[[], bool]) -> Parsed | None:
    """The future's result, or None once ``stop()`` says so while waiting for it."""
    while not stop():
        try:
            return future.result(timeout=_STOP_CHECK)
        except TimeoutError:
            continue
    return None
