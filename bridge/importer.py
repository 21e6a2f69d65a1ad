"""`paperbridge import`: read saved HF JSON/HTML and arXiv RSS/API XML files into the store."""

from __future__ import annotations

import logging
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bridge.models import Paper, ParseProblem, ParseResult
from bridge.sources import arxiv_parse, hf_parse
from bridge.sources.base import log_problems
from bridge.store import Store
from bridge.store.search_index import IndexDoc, index_doc

log = logging.getLogger(__name__)

BATCH = 1000
# New papers from one import after which the search index is merged (a few seconds per
# 100,000 stored papers).
OPTIMIZE_AFTER = 10_000
_PAPER_FIELDS = tuple(f.name for f in fields(Paper))


@dataclass(slots=True)
class ImportCounts:
    new: int = 0
    merged: int = 0
    skipped: int = 0
    problems: int = 0
    unreadable_files: int = 0


def detect_and_parse(text: str, name: str) -> ParseResult:
    """Pick the parser from the content, not the file name (saved pages are often renamed)."""
    head = text[:4096].lstrip("\ufeff \t\r\n")
    if head.startswith(("[", "{")):
        return hf_parse.parse_api(text, name)
    lowered = head.lower()
    if "<rss" in lowered or ("<feed" in lowered and "announce_type" in text[:65536]):
        return arxiv_parse.parse_listing(text, name)
    if "<feed" in lowered:
        return arxiv_parse.parse_api(text, name)
    if "<html" in lowered or "<!doctype html" in lowered or "<div" in lowered:
        return hf_parse.parse_html(text, name)
    # Unknown: let the XML reader say what is wrong with it.
    return arxiv_parse.parse_api(text, name)


# A parsed file as it crosses from the parsing process: plain tuples pickle several times
# faster than frozen dataclasses with slots. The search index text (IndexDoc) of each paper
# comes along when the parsing process worked it out.
_Parsed = tuple[list[tuple[Any, ...]], list[IndexDoc] | None, list[ParseProblem], str | None]


def _parse_file(path: Path, with_index: bool = False) -> _Parsed:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return [], None, [], f"cannot read {path}: {exc.strerror or exc}"
    if not text.lstrip("\ufeff").strip():
        # Nothing to tell the format by: the XML reader, the last resort, would call it a
        # broken arXiv document. Usually a download that failed.
        return [], None, [], f"{path} is an empty file"
    parsed = detect_and_parse(text, str(path))
    rows = [tuple(getattr(paper, name) for name in _PAPER_FIELDS) for paper in parsed.papers]
    # Analyzing the text for the index costs about as much as parsing; in the parsing process
    # it runs on the other core, and the storing process only writes.
    docs = [index_doc(paper) for paper in parsed.papers] if with_index else None
    return rows, docs, parsed.problems, None


def _store(
    store: Store,
    parsed: _Parsed,
    counts: ImportCounts,
    announce: bool,
    progress: Callable[[int], None],
) -> None:
    rows, docs, problems, error = parsed
    if error is not None:
        counts.unreadable_files += 1
        log.error("import: %s", error)
        return
    log_problems(problems)
    counts.problems += len(problems)
    for start in range(0, len(rows), BATCH):
        chunk = [Paper(*row) for row in rows[start : start + BATCH]]
        chunk_docs = docs[start : start + BATCH] if docs is not None else None
        result = store.add_papers(chunk, announce=announce, index_docs=chunk_docs)
        counts.new += len(result.new)
        counts.merged += result.merged + len(result.revised)
        counts.skipped += result.skipped
        progress(len(chunk))


def import_paths(
    store: Store,
    paths: Sequence[Path],
    *,
    announce: bool = False,
    progress: Callable[[int], None] = lambda _n: None,
    parallel: bool | None = None,
) -> ImportCounts:
    """Parse and store files; a bad record or file is skipped and logged, the rest kept.

    With several files, parsing runs in a second process one file ahead of storing, so the
    two use both cores (SQLite takes one writer, so storing itself stays in this process).
    That process also works out each paper's search index text.
    """
    counts = ImportCounts()
    if parallel is None:
        parallel = len(paths) > 1
    if not parallel:
        for path in paths:
            _store(store, _parse_file(path), counts, announce, progress)
    else:
        _import_in_parallel(store, paths, counts, announce, progress)
    if counts.new >= OPTIMIZE_AFTER:
        # Batches leave the search index in many segments; one merge makes searches faster.
        store.optimize_search_index()
    return counts


def _import_in_parallel(
    store: Store,
    paths: Sequence[Path],
    counts: ImportCounts,
    announce: bool,
    progress: Callable[[int], None],
) -> None:
    # spawn, not fork: forking a process that runs threads (the progress bar, a server) is
    # unsafe and deprecated.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        pending: deque[Future[_Parsed]] = deque()
        queue: Iterable[Path] = iter(paths)
        for path in queue:
            pending.append(pool.submit(_parse_file, path, True))
            if len(pending) >= 2:
                _store(store, pending.popleft().result(), counts, announce, progress)
        while pending:
            _store(store, pending.popleft().result(), counts, announce, progress)
