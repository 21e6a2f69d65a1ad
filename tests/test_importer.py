"""`paperbridge import` stores exactly what one add_papers call per batch stores, on both
databases, and a failed import keeps what it committed."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import bridge.import_pieces as import_pieces
import bridge.importer as importer
import bridge.store.core as store_module
from bridge.errors import StoreError
from bridge.import_pieces import detect_and_parse
from bridge.importer import import_paths
from bridge.search import search_store
from bridge.store import Store, open_store
from tests.conftest import postgres_schema

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
QUERIES = ["transformer", "language models", "pre-trained", "cat:cs.LG", "source:hf", "llm"]


def fixture_files(tmp_path: Path) -> list[Path]:
    """The real fixtures, plus copies that make the store merge, revise, skip and fold."""
    files = sorted(FIXTURES.glob("*/*"))
    hf = json.loads((FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json").read_text())
    api = (FIXTURES / "arxiv" / "api_query_transformer_cs.LG_2026-06-14.xml").read_text()
    api_ids = re.findall(r"abs/(\d{4}\.\d{5})v1", api)

    later = json.loads(json.dumps(hf))
    for n, item in enumerate(later):
        item["paper"]["upvotes"] = (item["paper"].get("upvotes") or 0) + n % 3  # some merge
    later[0]["paper"]["ai_summary"] = "A new summary about pre-trained world-models."  # reindex
    later.append(later[1])  # the same paper twice in one file: folded
    # arXiv papers seen on HF too: one paper, merged facts, upvotes for ranking.
    for arxiv_id, item in zip(api_ids, hf, strict=False):
        crossed = json.loads(json.dumps(item))
        crossed["paper"]["id"] = arxiv_id
        later.append(crossed)
    extra = [tmp_path / "hf_later.json", tmp_path / "api_v2.xml", tmp_path / "hf_again.json"]
    extra[0].write_text(json.dumps(later))
    # A later version of each API paper: revisions, one with a new title.
    head, entries = api.replace("v1</id>", "v2</id>").split("<entry>", 1)
    extra[1].write_text(head + "<entry>" + entries.replace("<title>", "<title>Revised: ", 1))
    extra[2].write_text(json.dumps(hf))  # nothing new: skipped
    return [*files, *extra, FIXTURES / "missing.json"]


def store_one_batch_at_a_time(store: Store, files: list[Path]) -> dict[str, int]:
    """What the importer must match: each file parsed here, each batch one add_papers call."""
    counts = {"new": 0, "merged": 0, "skipped": 0}
    for path in files:
        if not path.exists():
            continue
        papers = detect_and_parse(path.read_text(encoding="utf-8"), str(path)).papers
        for start in range(0, len(papers), import_pieces.BATCH):
            result = store.add_papers(papers[start : start + import_pieces.BATCH], announce=False)
            counts["new"] += len(result.new)
            counts["merged"] += result.merged + len(result.revised)
            counts["skipped"] += result.skipped
    return counts


def contents(store: Store) -> dict[str, Any]:
    """Every table the import writes, the search index's own terms, and search results."""
    postgres = store.engine.dialect.name == "postgresql"
    out: dict[str, Any] = {}
    with store.engine.connect() as conn:
        # term_expansions: the import mines its batches at its end as add_papers mines them.
        for table in ("papers", "search_compounds", "search_votes", "term_expansions"):
            out[table] = [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table}"))]
            out[table].sort(key=repr)
        if postgres:
            index = "SELECT seq, doc::text FROM paper_search ORDER BY seq"
        else:
            conn.exec_driver_sql(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.terms USING fts5vocab(main, paper_fts, instance)"
            )
            index = 'SELECT term, doc, col, "offset" FROM temp.terms ORDER BY 1, 2, 3, 4'
        out["index"] = [tuple(row) for row in conn.execute(text(index))]
    out["mining pending"] = store.mining_pending()
    for query in QUERIES:
        found = search_store(store, query, limit=50)
        out[query] = [
            (item.stored.paper.arxiv_id, item.stored.seq, item.why) for item in found.items
        ]
    return out


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "_utcnow", lambda: T0)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several batches a file and several batches a transaction, even with the fixtures."""
    monkeypatch.setattr(import_pieces, "BATCH", 7)
    monkeypatch.setattr(importer, "TRANSACTION", 20)


@pytest.fixture
def reference_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database of the same kind."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'reference.db'}"
    else:
        with postgres_schema() as url:
            yield url


@pytest.mark.parametrize("streamed", [False, True], ids=["whole files", "streamed"])
@pytest.mark.parametrize("parallel", [False, True])
def test_import_stores_exactly_what_add_papers_stores(
    database_url: str,
    reference_url: str,
    tmp_path: Path,
    fixed_clock: None,
    small_batches: None,
    monkeypatch: pytest.MonkeyPatch,
    parallel: bool,
    streamed: bool,
) -> None:
    if streamed:
        # Every file counts as big: JSON arrays and arXiv documents are read a piece at a
        # time and their records parsed in pieces, the pages whole.
        monkeypatch.setattr(import_pieces, "STREAM_ABOVE", 0)
    files = fixture_files(tmp_path)
    reference = open_store(reference_url)
    try:
        # Papers known before either import: the first batches merge with them.
        known = detect_and_parse(files[0].read_text(encoding="utf-8"), str(files[0])).papers[:4]
        reference.add_papers(known, announce=False)
        expected_counts = store_one_batch_at_a_time(reference, files)
        expected = contents(reference)
    finally:
        reference.close()
    imported = open_store(database_url)
    try:
        imported.add_papers(known, announce=False)
        counts = import_paths(imported, files, parallel=parallel, workers=2)
        assert contents(imported) == expected
        # The files did make the store merge, revise and fold (not only insert).
        revised = imported.get_paper("2606.13677")
        assert revised is not None and revised.paper.version == 2
        assert revised.paper.title.startswith("Revised: ") and "hf" in revised.paper.sources
    finally:
        imported.close()
    assert (counts.new, counts.merged, counts.skipped) == tuple(expected_counts.values())
    assert expected_counts["merged"] > 40 and expected_counts["skipped"] > 20
    assert counts.unreadable_files == 1


@pytest.mark.parametrize("failure", ["database", "other"])
def test_failed_import_keeps_the_batches_it_committed_and_no_more(
    sqlite_url: str,
    tmp_path: Path,
    small_batches: None,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    store = open_store(sqlite_url)
    calls = 0
    add_batch = Store._add_batch

    def failing(self: Store, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 5:
            if failure == "database":
                raise OperationalError("INSERT", {}, Exception("disk I/O error"))
            raise RuntimeError("disk I/O error")  # not the database's: nothing rolled it back
        return add_batch(self, *args, **kwargs)

    monkeypatch.setattr(Store, "_add_batch", failing)
    try:
        with pytest.raises((StoreError, RuntimeError), match="disk I/O error"):
            import_paths(store, [FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json"])
        # Batches of 7, a commit after 21 papers: the first three batches stay, the fourth
        # (stored, not committed when the fifth failed) is gone, index and all.
        assert store.count_papers() == 21
        assert search_store(store, "source:hf", limit=50).total == 21
        with store.engine.connect() as conn:  # the pooled connection is as it was
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2000
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    finally:
        store.close()


def hf_files(directory: Path, files: int, per_file: int) -> list[Path]:
    """``files`` saved HF API responses of ``per_file`` distinct papers each."""
    items = json.loads((FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json").read_text())
    directory.mkdir()
    paths = []
    for file_no in range(files):
        batch = []
        for k in range(per_file):
            n = file_no * per_file + k
            item = json.loads(json.dumps(items[n % len(items)]))
            item["paper"]["id"] = f"2601.{10000 + n:05d}"
            batch.append(item)
        paths.append(directory / f"hf-{file_no:03d}.json")
        paths[-1].write_text(json.dumps(batch))
    return paths


CHILD = """
import sys
from datetime import UTC, datetime
from pathlib import Path
import bridge.importer as importer
import bridge.store.core as store_module
import bridge.store.locking as locking
store_module._utcnow = lambda: datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
importer.TRANSACTION = 100
# Commits by count only: on a loaded machine the writer would also commit when it has
# held the write lock HOLD seconds, and the kept count would not be whole transactions.
locking.HOLD = 3600.0
store = store_module.open_store(sys.argv[1])
importer.import_paths(store, sorted(Path(sys.argv[2]).glob("*.json")), parallel=False)
"""


@pytest.mark.slow
def test_kill_9_mid_import_keeps_a_sound_store_and_importing_again_completes_it(
    tmp_path: Path, fixed_clock: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "TRANSACTION", 100)
    files = hf_files(tmp_path / "in", files=60, per_file=50)
    path = tmp_path / "killed.db"
    open_store(f"sqlite:///{path}").close()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, f"sqlite:///{path}", str(tmp_path / "in")],
        cwd=Path(__file__).parent.parent,
    )
    deadline = time.monotonic() + 60
    stored = 0
    while time.monotonic() < deadline and child.poll() is None and stored < 1000:
        with sqlite3.connect(path) as reader:
            stored = reader.execute("SELECT count(*) FROM papers").fetchone()[0]
        time.sleep(0.005)
    assert child.poll() is None, "the import finished before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.execute("INSERT INTO paper_fts(paper_fts) VALUES ('integrity-check')")
        kept = conn.execute("SELECT count(*) FROM papers").fetchone()[0]
    assert kept >= 1000 and kept % 100 == 0  # whole transactions only
    killed = open_store(f"sqlite:///{path}")
    clean = open_store(f"sqlite:///{tmp_path / 'clean.db'}")
    try:
        assert import_paths(killed, files).new == 3000 - kept
        assert import_paths(clean, files).new == 3000
        # The killed import left its papers unmined for acronyms and compounds, and said so
        # in the store: importing again mined the whole archive. The clean import mined its
        # batches; mining its whole archive too gives both the same table.
        clean.mine_expansions()
        assert contents(killed) == contents(clean)
        assert not killed.mining_pending()
    finally:
        killed.close()
        clean.close()
