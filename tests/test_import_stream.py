"""Big files are read a piece at a time: JSON arrays split into their records, arXiv documents
into their items, each piece parsed on its own; one bad record costs only itself."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import bridge.import_pieces as import_pieces
from bridge.import_pieces import detect_and_parse
from bridge.importer import import_paths
from bridge.models import AddResult, Paper
from bridge.sources import arxiv_parse, hf_parse, json_records
from bridge.store import BulkWriter, open_store

FIXTURES = Path(__file__).parent / "fixtures"
HF_FILE = FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json"
API_FILE = FIXTURES / "arxiv" / "api_query_transformer_cs.LG_2026-06-14.xml"
LEGACY_API_FILE = FIXTURES / "arxiv" / "api_query_all-Einstein_2018-02-05_legacy.xml"
LISTING_FILE = FIXTURES / "arxiv" / "rss_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_excerpt.xml"


def split(
    data: bytes, block: int | None = None, monkeypatch: pytest.MonkeyPatch | None = None
) -> list[bytes]:
    if block is not None and monkeypatch is not None:
        monkeypatch.setattr(json_records, "_BLOCK", block)
    return list(json_records.records(io.BytesIO(data)))


TRICKY = [
    {"title": 'brackets ] } [ { and a quote " and a backslash \\', "n": [1, [2, [3]]]},
    "a string element, with , and ]",
    12.5e3,
    None,
    True,
    [],
    {},
    {"deep": [[[[[[[[[[[["twelve levels"]]]]]]]]]]]]},
    {"escapes": '\\\\"\\u00e9\\n', "ends with backslash": "\\"},
    -7,
]


@pytest.mark.parametrize("block", [None, 1, 3, 64])
@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": "), (" ,\n ", " : ")])
def test_records_are_the_elements_as_written_whatever_the_blocks(
    block: int | None, separators: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "\ufeff \n" + json.dumps(TRICKY, separators=separators, ensure_ascii=False) + "\n"
    found = split(text.encode(), block, monkeypatch)
    assert [json.loads(record) for record in found] == TRICKY
    # Each record is the element's own text, not a re-encoding of it.
    assert all(record.decode() in text for record in found)


@pytest.mark.parametrize("text", ["[]", " [ ] ", "[\n]"])
def test_an_empty_array_has_no_records(text: str) -> None:
    assert split(text.encode()) == []


@pytest.mark.parametrize(
    ("text", "read", "why"),
    [
        ('{"error": "no"}', 0, "not a JSON array"),
        ('[{"a": 1}, {"b": 2}', 2, "cut off"),
        ('[{"a": 1}, {"b": "unclosed}]', 1, "cut off"),
        ('[{"a": 1} {"b": 2}]', 1, "expected ','"),
        ('[{"a": 1}, ]', 1, "cut off"),
    ],
)
def test_a_broken_array_raises_after_the_records_before_the_damage(
    text: str, read: int, why: str
) -> None:
    found: list[bytes] = []
    with pytest.raises(json_records.JsonArrayError, match=why) as raised:
        for record in json_records.records(io.BytesIO(text.encode())):
            found.append(record)
    assert raised.value.read == read == len(found)


def test_parse_records_keeps_every_good_record_and_names_the_bad_one() -> None:
    items = json.loads(HF_FILE.read_text())
    records = [json.dumps(item).encode() for item in items[:5]]
    records[2] = b'{"paper": {"id": "2606.00001", "title": tru}}'  # not JSON
    parsed = hf_parse.parse_records(records, "saved.json", first=100)
    whole = hf_parse.parse_api(json.dumps(items[:5]), "saved.json")
    assert [p.arxiv_id for p in parsed.papers] == [
        p.arxiv_id for n, p in enumerate(whole.papers) if n != 2
    ]
    assert [(problem.record, "not JSON" in problem.problem) for problem in parsed.problems] == [
        ("102", True)
    ]


def test_parse_records_reads_as_the_whole_array_does() -> None:
    items = json.loads(HF_FILE.read_text())
    records = [json.dumps(item).encode() for item in items]
    assert hf_parse.parse_records(records, "saved.json") == hf_parse.parse_api(
        HF_FILE.read_text(), "saved.json"
    )


@pytest.mark.parametrize("path", [API_FILE, LISTING_FILE])
def test_arxiv_items_streamed_read_as_the_whole_document(path: Path) -> None:
    listing = path is LISTING_FILE
    whole = detect_and_parse(path.read_text(), str(path))
    with path.open("rb") as file:
        streamed = list(arxiv_parse.stream_items(file, listing))
    pubdates = {pubdate for _item, pubdate in streamed}
    assert len(pubdates) == 1
    parsed = arxiv_parse.parse_items(
        [item for item, _ in streamed], str(path), listing, 0, pubdates.pop()
    )
    assert parsed.papers == whole.papers and parsed.problems == whole.problems


def test_an_arxiv_document_broken_midway_keeps_the_items_around_the_damage(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_pieces, "STREAM_ABOVE", 0)
    monkeypatch.setattr(import_pieces, "PIECE_RECORDS", 3)
    text = LEGACY_API_FILE.read_text()
    entries = [m.start() for m in re.finditer("<entry>", text)]
    # The sixth entry's title is not closed: the document is not well-formed from there.
    broken_at = text.index("</title>", entries[5])
    broken = text[:broken_at] + text[broken_at + len("</title>") :]
    path = tmp_path / "broken.xml"
    path.write_text(broken)
    whole = arxiv_parse.parse_api(broken, str(path))  # the salvaging parse of the whole file
    store = open_store(sqlite_url)
    try:
        counts = import_paths(store, [path], parallel=False)
        stored = {
            paper.paper.arxiv_id for paper in store.recent_papers(limit=1000, announced_only=False)
        }
    finally:
        store.close()
    assert stored == {paper.arxiv_id for paper in whole.papers}
    assert len(stored) == len(entries) - 1
    assert (counts.new, counts.skipped, counts.files) == (len(entries) - 1, 0, 1)
    assert counts.problems == len(whole.problems) >= 1


def test_a_json_file_broken_midway_keeps_the_records_before_and_says_where(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_pieces, "STREAM_ABOVE", 0)
    monkeypatch.setattr(import_pieces, "PIECE_RECORDS", 4)
    items = json.loads(HF_FILE.read_text())
    text = json.dumps(items)
    # Cut off inside the eleventh record (a download that stopped).
    cut = text.index(json.dumps(items[10]))
    path = tmp_path / "cut.json"
    path.write_text(text[: cut + 40])
    store = open_store(sqlite_url)
    try:
        counts = import_paths(store, [path], parallel=True, workers=2)
        assert store.count_papers() == counts.new == 10
    finally:
        store.close()
    assert (counts.problems, counts.files, counts.unreadable_files) == (1, 1, 0)


def test_a_big_file_is_parsed_by_several_processes(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_pieces, "STREAM_ABOVE", 1000)
    monkeypatch.setattr(import_pieces, "PIECE_RECORDS", 5)
    items = json.loads(HF_FILE.read_text())
    path = tmp_path / "big.json"
    path.write_text(json.dumps(items))
    pieces = list(import_pieces.file_pieces(path))
    assert [piece.first for piece in pieces] == list(range(0, len(items), 5))
    assert [piece.last for piece in pieces] == [False] * (len(pieces) - 1) + [True]
    store = open_store(sqlite_url)
    try:
        # One file, yet parsed in parallel: it is big.
        counts = import_paths(store, [path], workers=2)
        assert counts.new == store.count_papers() == len({i["paper"]["id"] for i in items})
    finally:
        store.close()


def test_small_pieces_are_stored_in_whole_batches_never_across_files(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parsed three records at a time, stored up to seven at a time: two pieces a batch.
    monkeypatch.setattr(import_pieces, "STREAM_ABOVE", 1000)
    monkeypatch.setattr(import_pieces, "PIECE_RECORDS", 3)
    monkeypatch.setattr(import_pieces, "BATCH", 7)
    items = json.loads(HF_FILE.read_text())
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps(items[:14]))
    second.write_text(json.dumps(items[14:24]))
    batches: list[list[str]] = []
    add_papers = BulkWriter.add_papers

    def recording(self: BulkWriter, papers: Sequence[Paper], **kwargs: Any) -> AddResult:
        batches.append([paper.arxiv_id for paper in papers])
        return add_papers(self, papers, **kwargs)

    monkeypatch.setattr(BulkWriter, "add_papers", recording)
    store = open_store(sqlite_url)
    try:
        counts = import_paths(store, [first, second], parallel=False)
    finally:
        store.close()
    ids = [item["paper"]["id"] for item in items[:24]]
    assert [len(batch) for batch in batches] == [6, 6, 2, 6, 4]
    assert [paper for batch in batches for paper in batch] == ids
    assert (counts.files, counts.new) == (2, len(set(ids)))
