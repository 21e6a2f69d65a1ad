"""An import mines its papers for acronyms and compounds once, at its end
(``bridge.importer._mine_at_the_end``, ``bridge.store.expansions.DeferredMining``): the table
it leaves is the one mining batch by batch (or the whole archive) gives, and papers an import
stored but did not mine (stopped, killed) are mined by the next import."""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import bridge.importer as importer
from bridge import import_pieces
from bridge.config import Settings
from bridge.import_pieces import detect_and_parse
from bridge.importer import import_paths
from bridge.models import Paper
from bridge.status import status_report
from bridge.store import Store, open_store, schema
from bridge.store import expansions as expansions_module
from bridge.store.expansions import (
    DeferredMining,
    Miner,
    archive_rows,
    archive_rows_in,
    archive_texts,
)
from bridge.store.mining import (
    Rows,
    first_pass_of_span,
    joinable_set,
    pair_counts,
    with_compounds,
)
from tests.test_importer import FIXTURES, fixture_files, hf_files, store_one_batch_at_a_time

HF = FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json"
# Written both ways in different batches (of 7), and acronyms defined in several papers.
TEXTS = [
    ("Timesteps", "A timestep schedule for out-of-distribution (OOD) detection."),
    ("Data", "We release a data set and fine tune on it."),
    ("Models", "Large language models (LLMs) finetune well."),
    ("More data", "Datasets of images; each time step counts."),
    ("Detection", "Out-of-distribution (OOD) inputs and large language models (LLMs)."),
]


def compound_file(directory: Path) -> Path:
    """An HF API response whose papers write compounds both ways, in different batches."""
    item = json.loads(HF.read_text())[0]
    items = []
    for n in range(21):
        title, abstract = TEXTS[n % len(TEXTS)]
        copy = json.loads(json.dumps(item))
        copy["paper"].update(id=f"2609.{20000 + n:05d}", title=title, summary=abstract)
        copy.update(title=title, summary=abstract)
        items.append(copy)
    path = directory / "compounds.json"
    path.write_text(json.dumps(items))
    return path


def table(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(schema.term_expansions)).all()
    return sorted(tuple(row) for row in rows)


def whole_archive_table(store: Store) -> list[tuple[Any, ...]]:
    """What mining every stored paper gives, without writing it."""
    with store.engine.connect() as conn:
        rows = archive_rows(conn)
    columns = [column.name for column in schema.term_expansions.columns]
    return sorted(tuple(row[name] for name in columns) for row in rows)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_pieces, "BATCH", 7)
    monkeypatch.setattr(importer, "TRANSACTION", 20)


@pytest.fixture
def reference(tmp_path: Path) -> Any:
    opened = open_store(f"sqlite:///{tmp_path / 'reference.db'}")
    yield opened
    opened.close()


def counting_batch_mining(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Papers mined batch by batch (``Miner.record_texts``), call by call."""
    calls: list[int] = []
    record_texts = Miner.record_texts

    def counted(self: Miner, conn: Any, texts: Any) -> None:
        calls.append(len(texts))
        record_texts(self, conn, texts)

    monkeypatch.setattr(Miner, "record_texts", counted)
    return calls


def test_a_big_import_mines_the_whole_archive_and_not_its_batches(
    store: Store,
    reference: Store,
    tmp_path: Path,
    small_batches: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importer, "OPTIMIZE_AFTER", 50)  # "big": 50 new papers or more
    files = [*fixture_files(tmp_path), compound_file(tmp_path)]
    # The way before: each batch mined as it is stored, then the whole archive.
    store_one_batch_at_a_time(reference, files)
    reference.mine_expansions()
    mined = counting_batch_mining(monkeypatch)
    counts = import_paths(store, files)
    assert counts.new >= 50
    assert mined == []  # no batch was mined on its own
    assert table(store) == table(reference) == whole_archive_table(store)
    assert any(row[0] == "compound" for row in table(store))
    assert not store.mining_pending()


def test_mining_in_several_processes_gives_the_rows_of_one(store: Store, tmp_path: Path) -> None:
    # The spans each process reads are added up in order: the same counts, and the same
    # first texts of each row, as reading every paper in order in one process.
    with store.engine.connect() as conn, spawn_pool(2) as pool:
        assert archive_rows_in(pool, 2, store.engine.url, conn) == []  # no paper yet
    store_one_batch_at_a_time(store, [*fixture_files(tmp_path), compound_file(tmp_path)])
    with store.engine.connect() as conn, spawn_pool(2) as pool:
        one = archive_rows(conn)
        assert any(row["kind"] == "compound" for row in one)
        for processes in (1, 2, 7):
            assert archive_rows_in(pool, processes, store.engine.url, conn) == one


def test_a_mining_process_reads_an_sqlite_store_without_sqlalchemy(
    store: Store, tmp_path: Path
) -> None:
    # An import's parsing processes mine its spans at its end; on SQLite they need not import
    # SQLAlchemy for that (about 10 MiB each against the import's memory bound, issue 14).
    store_one_batch_at_a_time(store, [compound_file(tmp_path)])
    if store.engine.url.get_backend_name() != "sqlite":
        pytest.skip("PostgreSQL spans are read through SQLAlchemy")
    # Asked through a builtin: a function of this module would import it, and SQLAlchemy.
    imported = (eval, "'sqlalchemy' in __import__('sys').modules")
    with spawn_pool(1) as pool:
        source = Path(store.engine.url.database or "").resolve()
        rows, closed = pool.submit(first_pass_of_span, source, (0, 1 << 62)).result()
        assert pool.submit(*imported).result() is False
    with store.engine.connect() as conn:
        assert mine_rows(rows, closed, conn) == archive_rows(conn)


def mine_rows(rows: Rows, closed: Counter[str], conn: Any) -> list[dict[str, Any]]:
    """The rows of a first pass over every paper, with its second pass here."""
    pairs = pair_counts(archive_texts(conn), joinable_set(closed))
    return with_compounds(rows, closed, pairs).rows()


def spawn_pool(processes: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))


def test_a_small_import_mines_its_batches_as_they_were_stored(
    store: Store, reference: Store, tmp_path: Path, small_batches: None
) -> None:
    files = [*fixture_files(tmp_path), compound_file(tmp_path)]
    store_one_batch_at_a_time(reference, files)
    import_paths(store, files, parallel=False)
    assert table(store) == table(reference)
    # Batch by batch misses a compound whose forms came in different batches: the table is
    # not the whole archive's, so the two ways were told apart.
    assert table(store) != whole_archive_table(store)


class StopAfter:
    """``progress`` and ``stop`` for ``import_paths``: stop once ``papers`` are stored."""

    def __init__(self, papers: int) -> None:
        self.papers = papers
        self.stored = 0

    def progress(self, papers: int) -> None:
        self.stored += papers

    def stop(self) -> bool:
        return self.stored >= self.papers


def test_an_import_stopped_half_way_mines_what_it_stored(
    store: Store, reference: Store, tmp_path: Path
) -> None:
    files = hf_files(tmp_path / "in", files=4, per_file=20)
    after = StopAfter(40)
    counts = import_paths(store, files, parallel=False, progress=after.progress, stop=after.stop)
    assert counts.files == 2 and counts.new == 40
    stored = store.count_papers()
    for path in files[: stored // 20]:
        papers = detect_and_parse(path.read_text(encoding="utf-8"), str(path)).papers
        reference.add_papers(papers, announce=False)
    assert reference.count_papers() == stored
    assert table(store) == table(reference) != []
    assert not store.mining_pending()


def test_an_import_stopped_with_too_many_papers_to_note_leaves_them_for_the_next(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expansions_module, "HOLD", 30)
    files = hf_files(tmp_path / "in", files=3, per_file=20)
    after = StopAfter(40)
    counts = import_paths(store, files, parallel=False, progress=after.progress, stop=after.stop)
    assert counts.files == 2 and counts.new == 40
    # Stored, not mined, and the store says so, as does `paperbridge status`.
    assert store.mining_pending()
    assert table(store) == []
    said = status_report(store, Settings())["problems"]
    assert [p for p in said if "not yet mined for acronyms" in p]
    # Importing again to continue mines the whole archive, the papers stored before too.
    mined = counting_batch_mining(monkeypatch)
    again = import_paths(store, files, parallel=False)
    # Fewer than it can note (20 of 30): it mines the whole archive for the earlier import.
    assert again.new == 20
    assert mined == [] and not store.mining_pending()
    assert table(store) == whole_archive_table(store) != []
    said = status_report(store, Settings())["problems"]
    assert not [p for p in said if "not yet mined" in p]


def test_papers_a_killed_import_committed_are_mined_by_the_next_import(
    store: Store, tmp_path: Path
) -> None:
    papers = detect_and_parse(HF.read_text(encoding="utf-8"), str(HF)).papers
    # Committed by the bulk writer, then the process died before the import's end.
    with store.bulk_writer(defer_mining=True) as writer:
        writer.add_papers(papers[:20], announce=False)
    assert store.mining_pending() and table(store) == []
    reopened = open_store(str(store.engine.url.render_as_string(hide_password=False)))
    try:
        # The next import, of papers already stored: nothing new, yet the archive is mined.
        assert import_paths(reopened, [HF], parallel=False).new == len(papers) - 20
        assert not reopened.mining_pending()
        assert table(reopened) == whole_archive_table(reopened) != []
    finally:
        reopened.close()


def test_a_transaction_rolled_back_takes_its_batches_out_of_the_deferred_mining() -> None:
    deferred = DeferredMining(stale=False, hold=10)
    deferred.add([1, 2, 3])
    deferred.committed()
    deferred.add([4, 5])
    deferred.rolled_back()
    assert deferred.seq_batches() == [[1, 2, 3]] and deferred.papers == 3
    # A savepoint rolled back: SQLite gives its numbers again; the last batch keeps them.
    deferred.add([4, 5])
    deferred.add([4, 6])
    assert deferred.seq_batches() == [[1, 2, 3], [5], [4, 6]]
    assert not deferred.whole_archive
    deferred.add(list(range(7, 20)))
    assert deferred.whole_archive and deferred.seq_batches() == []
    deferred.rolled_back()  # past the limit once, the whole archive is mined anyway
    assert deferred.whole_archive


def test_a_refused_paper_leaves_the_deferred_mining_as_mining_batch_by_batch(
    store: Store, reference: Store
) -> None:
    # The refused paper rolls the writer's transaction back and the batches it held are
    # stored again; its own batch is stored in halves under savepoints.
    papers = [
        Paper(
            arxiv_id=f"2609.{30000 + n:05d}",
            title=f"Paper {n}",
            abstract=(
                "Out-of-distribution (OOD) inputs." if n % 2 else "Large language models (LLMs)."
            )
            + f" Number {n}.",
            source="hf",
        )
        for n in range(15)
    ]
    bad = papers[7].with_changes(arxiv_id="2609.39999", version=2**64)
    calls = [papers[:5], [*papers[5:8], bad, *papers[8:10]], papers[10:]]
    for target, defer in ((store, True), (reference, False)):
        with target.bulk_writer(commit_every=10_000, defer_mining=defer) as writer:
            for call in calls:
                writer.add_papers(call, announce=False)
        if defer:
            assert writer.deferred is not None
            target.mine_deferred(writer.deferred)
        assert target.count_papers() == 15
    assert table(store) == table(reference)
    assert {(row[1], row[5]) for row in table(store)} == {("ood", 7), ("llm", 8)}
