"""`paperbridge import`: read saved HF JSON/HTML and arXiv RSS/API XML files into the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bridge.models import ParseResult
from bridge.sources import arxiv_parse, hf_parse
from bridge.sources.base import log_problems
from bridge.store import Store

BATCH = 1000


@dataclass(slots=True)
class ImportCounts:
    new: int = 0
    merged: int = 0
    skipped: int = 0
    problems: int = 0


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


def import_file(
    store: Store,
    path: Path,
    counts: ImportCounts,
    *,
    announce: bool = False,
    progress: Callable[[int], None] = lambda _n: None,
) -> None:
    """Parse one file and store its papers in batches; a bad record is skipped and logged."""
    parsed = detect_and_parse(path.read_text(encoding="utf-8", errors="replace"), str(path))
    log_problems(parsed.problems)
    counts.problems += len(parsed.problems)
    papers = parsed.papers
    for start in range(0, len(papers), BATCH):
        chunk = papers[start : start + BATCH]
        result = store.add_papers(chunk, announce=announce)
        counts.new += len(result.new)
        counts.merged += result.merged + len(result.revised)
        counts.skipped += result.skipped
        progress(len(chunk))
