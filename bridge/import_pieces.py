"""What a parsing process of `paperbridge import` does: cut big files into pieces and parse
each piece (or small file) into papers and their search index text.

Kept apart from ``bridge.importer`` so that a parsing process imports only the parsers and the
analyzer: importing the store (SQLAlchemy and its dialects) would add about 15 MiB to every
parsing process for code it never runs (bench/import_memory.py counts all processes' memory).
``tests/test_import_pieces.py`` checks that this module and a pickled task load no SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from operator import attrgetter
from pathlib import Path
from typing import Any, BinaryIO

from bridge.models import Paper, ParseProblem, ParseResult
from bridge.sources import arxiv_parse, hf_parse, json_records
from bridge.sources.limits import within_limits
from bridge.store.search_index import index_doc, to_tsvector

# Papers per batch: each batch is stored as one add_papers call would store it.
BATCH = 1000
# Records of a big file per piece. A parsing process's memory grows with its piece (about
# 18 MiB for 1,000 HF records, 5 for 250: the records, the papers, their index text and the
# pickled answer), so pieces are smaller than batches.
PIECE_RECORDS = 250
paper_fields = attrgetter(*(f.name for f in fields(Paper)))


def detect_and_parse(text: str, name: str) -> ParseResult:
    """Pick the parser from the content, not the file name (saved pages are often renamed)."""
    return _PARSERS[detect_format(text)](text, name)


def detect_format(text: str) -> str:
    """What a document is, from its first 64 KiB: "hf-json", "hf-html", "arxiv-listing" or
    "arxiv-api" (also for anything unknown: the XML reader then says what is wrong with it)."""
    head = text[:4096].lstrip("\ufeff \t\r\n")
    if head.startswith(("[", "{")):
        return "hf-json"
    lowered = head.lower()
    if "<rss" in lowered or ("<feed" in lowered and "announce_type" in text[:65536]):
        return "arxiv-listing"
    if "<feed" in lowered:
        return "arxiv-api"
    if "<html" in lowered or "<!doctype html" in lowered or "<div" in lowered:
        return "hf-html"
    return "arxiv-api"


_PARSERS: dict[str, Callable[[str, str], ParseResult]] = {
    "hf-json": hf_parse.parse_api,
    "hf-html": hf_parse.parse_html,
    "arxiv-listing": arxiv_parse.parse_listing,
    "arxiv-api": arxiv_parse.parse_api,
}


# Files bigger than this are read a piece at a time: their records are cut out in the
# storing process, a block of the file at a time, and parsed in pieces of PIECE_RECORDS by the parsing
# processes, so no process holds the whole file and a big file is parsed in parallel too.
# Smaller ones (a day's listing, an API page) go whole to one parsing process.
STREAM_ABOVE = 8 << 20


@dataclass(frozen=True, slots=True)
class Piece:
    """What one parsing task reads: a whole file (``format`` None), or records of a big
    file cut out as bytes: elements of a JSON array ("hf-json"), arXiv items
    ("arxiv-listing", "arxiv-api")."""

    path: Path
    format: str | None = None
    records: tuple[bytes, ...] = ()
    first: int = 0  # the index of the first record in the file
    last: bool = True  # the file's last piece
    pubdate: str | None = None  # arXiv: the channel's, for items that have none
    # Where the file stops being readable a piece at a time: why (JSON), or how many arXiv
    # items were read before (the parsing process then reads the rest from the whole file).
    broken: str | None = None
    skip: int = 0


# A parsed piece as it crosses from a parsing process: plain tuples pickle several times
# faster than frozen dataclasses with slots. Each paper comes with its search index text
# (IndexDoc's fields), worked out there too: analyzing costs about as much as parsing.
# Then the problems, why the file could not be read at all (or None), and its name.
Parsed = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[ParseProblem], str | None, str]


def parse_file(path: Path, tsvectors: bool = False) -> Parsed:
    """A whole file; see ``parse_piece``."""
    return parse_piece(Piece(path), tsvectors)


def parse_piece(piece: Piece, tsvectors: bool = False) -> Parsed:
    """``tsvectors``: also work out each paper's PostgreSQL index text (for a PostgreSQL
    store), which costs the storing process more than anything else it does there."""
    name = str(piece.path)
    if piece.format is None or piece.skip:
        try:
            text = piece.path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return [], [], [], f"cannot read {piece.path}: {exc.strerror or exc}", name
        if piece.skip:  # the rest of an arXiv document stream_items could not read
            parse_rest = (
                arxiv_parse.parse_listing
                if piece.format == "arxiv-listing"
                else arxiv_parse.parse_api
            )
            parsed = parse_rest(text, name, skip=piece.skip)
        elif not text.lstrip("\ufeff").strip():
            # Nothing to tell the format by: the XML reader, the last resort, would call it
            # a broken arXiv document. Usually a download that failed.
            return [], [], [], f"{piece.path} is an empty file", name
        else:
            parsed = detect_and_parse(text, name)
    elif piece.format == "hf-json":
        parsed = hf_parse.parse_records(piece.records, name, piece.first)
        if piece.broken is not None:
            problem = f"{piece.broken} after record {piece.first + len(piece.records)}"
            parsed.problems.append(ParseProblem(hf_parse.SOURCE, name, problem))
    else:
        parsed = arxiv_parse.parse_items(
            piece.records, name, piece.format == "arxiv-listing", piece.first, piece.pubdate
        )
    # Held to the stores' limits here, in the parsing process, in parallel.
    parsed = within_limits(parsed, name)
    rows = list(map(paper_fields, parsed.papers))
    docs = [
        (doc.columns, doc.compounds, to_tsvector(doc) if tsvectors else None)
        for doc in map(index_doc, parsed.papers)
    ]
    return rows, docs, parsed.problems, None, name


def file_pieces(path: Path) -> Iterator[Piece]:
    """The pieces ``path`` is parsed in: itself, or for a big JSON array or arXiv document,
    its records PIECE_RECORDS at a time, read a block at a time."""
    file: BinaryIO | None = None
    try:
        if path.stat().st_size > STREAM_ABOVE:
            file = open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError:
        pass
    if file is None:
        yield Piece(path)  # the parsing process says what is wrong with it, if anything
        return
    with file:
        form = detect_format(file.read(65536).decode("utf-8", "replace"))
        file.seek(0)
        if form == "hf-json" and file.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"[":
            file.seek(0)
            yield from _json_pieces(path, file)
        elif form in ("arxiv-listing", "arxiv-api"):
            file.seek(0)
            yield from _arxiv_pieces(path, file, form)
        else:  # an HTML page, a JSON object: read whole
            yield Piece(path)


def _json_pieces(path: Path, file: BinaryIO) -> Iterator[Piece]:
    batch: list[bytes] = []
    first = 0
    broken = None
    try:
        for record in json_records.records(file):
            if len(batch) == PIECE_RECORDS:
                yield Piece(path, "hf-json", tuple(batch), first, last=False)
                first += len(batch)
                batch = []
            batch.append(record)
    except json_records.JsonArrayError as exc:
        broken = str(exc)
    except OSError as exc:
        broken = f"cannot read on: {exc.strerror or exc}"
    yield Piece(path, "hf-json", tuple(batch), first, broken=broken)


def _arxiv_pieces(path: Path, file: BinaryIO, form: str) -> Iterator[Piece]:
    batch: list[bytes] = []
    first = 0
    pubdate: str | None = None
    try:
        for item, item_pubdate in arxiv_parse.stream_items(file, form == "arxiv-listing"):
            if len(batch) == PIECE_RECORDS or (batch and item_pubdate != pubdate):
                yield Piece(path, form, tuple(batch), first, last=False, pubdate=pubdate)
                first += len(batch)
                batch = []
            pubdate = item_pubdate
            batch.append(item)
    except (arxiv_parse.StreamStopped, OSError) as exc:
        if batch:
            yield Piece(path, form, tuple(batch), first, last=False, pubdate=pubdate)
        # The rest, and what is wrong, from the whole file: a broken one reads no faster.
        read = exc.read if isinstance(exc, arxiv_parse.StreamStopped) else first + len(batch)
        yield Piece(path, form if read else None, skip=read)
        return
    yield Piece(path, form, tuple(batch), first, pubdate=pubdate)
